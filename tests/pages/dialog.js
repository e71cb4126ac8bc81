// Methods of dialog.html (MAIN world). What each dialog returned is kept, so a test can
// check the policy the extension applied (dismissed: alert → undefined, confirm → false,
// prompt → null).
globalThis.__any__ = globalThis.__any__ || {};
const answers = [];
const kind = new URLSearchParams(location.search).get("onload");
if (kind) answers.push({ kind, returned: window[kind](`${kind} while loading`) ?? null });

globalThis.__any__.ask = ({ kind = "confirm" } = {}) => {
  const returned = window[kind](`${kind} from a method`);
  answers.push({ kind, returned: returned ?? null });
  return { kind, returned: returned ?? null };
};
globalThis.__any__.answers = () => answers;
