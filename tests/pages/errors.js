// Methods that throw, reject, never answer, or return what JSON cannot carry.
// Runs in the page's MAIN world.
globalThis.__any__ = globalThis.__any__ || {};
const api = globalThis.__any__;

api.throwsTyped = () => {
  throw new TypeError("the answer is not 42");
};
class QuotaError extends Error {
  constructor(message) {
    super(message);
    this.name = "QuotaError";
  }
}
api.rejects = async () => {
  await new Promise((r) => setTimeout(r, 50));
  throw new QuotaError("out of quota after 50 ms");
};
api.never = () => new Promise(() => {});

// Each returns a value with one thing JSON cannot represent, at a known path.
api.returnsFunction = () => ({ items: [1, 2, 3, () => 4] }); // $.items[3]
api.returnsCycle = () => {
  const a = { name: "a", child: { name: "b" } };
  a.child.parent = a; // $.child.parent
  return a;
};
api.returnsNode = () => ({ found: { node: document.querySelector("#list") } }); // $.found.node
api.returnsBigInt = () => ({ big: [0, 10n ** 20n] }); // $.big[1]
api.returnsMap = () => ({ lookup: new Map([["a", 1]]) }); // $.lookup
api.returnsSymbol = () => ({ tag: Symbol("x") }); // $.tag
api.returnsNested = () => ({ a: { "b c": [{ d: () => 0 }] } }); // $.a["b c"][0].d

// Navigates its own tab elsewhere and never answers: the call must fail promptly, not hang.
api.navigatesAway = () => {
  setTimeout(() => location.assign("/plain.html?navigated-away"), 100);
  return new Promise(() => {});
};
