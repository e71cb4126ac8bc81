// Runs in: the extension's popup page. Renders the state the service worker's Rust core
// reports ({type: "status"} over chrome.runtime.sendMessage) and sends the edited label
// back ({type: "set_config"}); it decides nothing itself.

const $ = (id) => document.getElementById(id);
const time = (ms) => new Date(ms).toLocaleTimeString();

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c;
    tr.append(td);
  }
  return tr;
}

function lines(list, items) {
  list.replaceChildren(
    ...items.map(({ at, text }) => {
      const li = document.createElement("li");
      li.textContent = `${time(at)}  ${text}`;
      return li;
    }),
  );
}

let labelEdited = false;
$("label").addEventListener("input", () => (labelEdited = true));

// The tab the popup was opened on: the hosted userscripts say whether they run there.
let tabUrl = null;
chrome.tabs
  .query({ active: true, currentWindow: true })
  .then((tabs) => (tabUrl = tabs[0]?.url ?? null))
  .catch(() => {});

function hostedRow(h) {
  const patterns = [...h.matches, ...h.exclude_matches.map((p) => `not ${p}`), ...h.exclude_globs.map((g) => `not ${g}`)];
  const here = !h.enabled ? "disabled" : !h.registered ? "not registered" : h.active_on_tab ? "active" : "—";
  return row([`${h.name}${h.version ? " " + h.version : ""}`, patterns.join(", "), here]);
}

async function refresh() {
  const s = await chrome.runtime.sendMessage({ type: "status", url: tabUrl });
  if (!s || !s.ok) {
    $("state").textContent = "starting";
    $("why").textContent = s?.error ?? "the service worker did not answer";
    return;
  }
  const state = s.link.state.state;
  $("state").textContent = state.replace("_", " ");
  $("state").className = `badge ${state}`;
  $("why").textContent =
    state === "rejected"
      ? `Rejected: ${s.link.state.reason}`
      : state === "connected"
        ? ""
        : (s.link.last_error ?? "") + (s.config_file_error ? `\n${s.config_file_error}` : "");
  $("server").textContent = s.config.server;
  $("server-source").textContent = `(${s.config.server_source.replace("_", " ")})`;
  if (!labelEdited) $("label").value = s.config.label;
  $("browser").textContent = `${s.browser.name} ${s.browser.version}`;
  $("version").textContent = s.version;
  $("extension-id").textContent = s.extension_id;
  $("running").tBodies[0].replaceChildren(
    ...s.calls.in_flight.map((c) => row([c.method, c.page, c.stage, `${Math.round(s.now - c.started)} ms`])),
  );
  $("tabs-limit").textContent = `(idle ones beyond ${s.config.max_tabs} are closed)`;
  $("tabs").tBodies[0].replaceChildren(
    ...s.tabs.map(({ id, tab }) => {
      const state = tab.unresponsive ? "unresponsive" : typeof tab.nav === "string" ? tab.nav : `failed: ${tab.nav.failed}`;
      return row([String(id), tab.url, state, String(tab.calls.length)]);
    }),
  );
  $("calls").tBodies[0].replaceChildren(
    ...s.calls.history
      .slice()
      .reverse()
      .map((c) => row([time(c.started), c.method, c.page, c.outcome === "error" ? c.code : c.outcome, `${Math.round(c.duration_ms)} ms`])),
  );
  const hosted = s.hosted;
  $("hosted").tBodies[0].replaceChildren(...hosted.scripts.map(hostedRow));
  $("hosted-why").textContent = !hosted.available
    ? `"Allow User Scripts" is off: ${hosted.how_to_allow}. Until then any's userscripts do not run and \`any run\` is refused.`
    : (hosted.last_error ?? (hosted.scripts.length ? "" : "None (any scripts add FILE.user.js adds one)."));
  lines($("errors"), s.calls.errors.slice().reverse());
  lines($("log"), s.calls.log.slice().reverse());
  lines($("frames"), s.calls.frames.slice().reverse());
}

$("label-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const r = await chrome.runtime.sendMessage({ type: "set_config", label: $("label").value });
  $("label-result").textContent = r?.ok ? "saved" : (r?.error ?? "not saved");
  labelEdited = false;
});
$("retry").addEventListener("click", () => chrome.runtime.sendMessage({ type: "retry" }).then(refresh));

refresh();
setInterval(refresh, 500);
