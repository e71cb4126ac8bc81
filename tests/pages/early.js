// Defines its method at document start (MAIN world, synchronously in <head>).
globalThis.__any__ = globalThis.__any__ || {};
const definedWhile = document.readyState;
const hadBody = document.body !== null;
globalThis.__any__.early = async () => ({
  definedWhile,
  hadBody,
  calledWhile: document.readyState,
  heading: document.querySelector("h1")?.textContent ?? null,
});
