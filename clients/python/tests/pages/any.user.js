// ==UserScript==
// @name         any
// @match        *://*/*
// @grant        none
// @run-at       document-start
// ==/UserScript==
// The brief's userscript, verbatim; the test page loads it as a userscript manager would.
globalThis.__any__ = globalThis.__any__ || {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
globalThis.__any__.pageInfo = async ({ delay = 500 } = {}) => {
  await sleep(delay);
  const info = { title: document.title, url: location.href, readyState: document.readyState };
  document.body.style.outline = "3px solid red"; await sleep(300); document.body.style.outline = "";
  return info;
};
