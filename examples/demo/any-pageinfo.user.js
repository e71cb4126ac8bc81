// ==UserScript==
// @name         any
// @match        *://*/*
// @grant        none
// @run-at       document-start
// ==/UserScript==
//
// The brief's example userscript, unchanged. In real use a userscript manager
// (Tampermonkey, Violentmonkey) injects it into every page; in the demo, index.html
// includes it with a <script> tag in <head>, standing in for the manager.
// Runs in the page's MAIN world.
globalThis.__any__ = globalThis.__any__ || {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
globalThis.__any__.pageInfo = async ({ delay = 500 } = {}) => {
  await sleep(delay);
  const info = { title: document.title, url: location.href, readyState: document.readyState };
  document.body.style.outline = "3px solid red"; await sleep(300); document.body.style.outline = "";
  return info;
};
