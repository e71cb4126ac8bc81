// Methods of channel.html (tests/test_channel.py). Runs in the page's MAIN world.
//
// A method called over the extension's channel runs inside the dispatch of the
// channel's `any.call/<key>` DOM event, so `window.event` names it; called by
// executeScript, there is no event. That is how these methods report which way a call
// came in.
globalThis.__any__ = globalThis.__any__ || {};

const documentId = Math.random().toString(36).slice(2);
const via = () => (window.event ? String(window.event.type).split("/")[0] : "injection");

globalThis.__any__.via = ({ n } = {}) => ({ n, via: via(), documentId });

// Counts its runs: each call, whichever way it came in, must run it once.
let runs = 0;
globalThis.__any__.count = () => ({ n: ++runs, via: via() });

// A result whose JSON is about 2 × `quotes` characters (every quote is escaped).
globalThis.__any__.quotes = ({ quotes }) => ({ via: via(), text: '"'.repeat(quotes) });

// document.open() removes every event listener of the document, in every world: the
// channel's ends included. Done after this call has answered.
globalThis.__any__.reopenSoon = () => {
  setTimeout(() => {
    document.open();
    document.write("<!doctype html><title>any channel page, reopened</title><p>reopened</p>");
    document.close();
  }, 50);
  return true;
};

// Navigates away while the call is still running.
globalThis.__any__.leaveSoon = () => {
  setTimeout(() => location.assign("/plain.html?left-the-channel-page"), 100);
  return new Promise(() => {});
};

// Calls document.open() while the call is running over the channel (it removes the
// listeners of both of the channel's ends), then answers.
globalThis.__any__.reopenDuring = async ({ title }) => {
  await new Promise((resolve) => setTimeout(resolve, 20));
  document.open();
  document.write(`<!doctype html><title>${title}</title><p>reopened during a call</p>`);
  document.close();
  await new Promise((resolve) => setTimeout(resolve, 20));
  return { title: document.title, via: via(), documentId };
};
