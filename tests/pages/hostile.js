// What a hostile web page could try against the any server on the same machine. Runs
// in the page's MAIN world (origin http://127.0.0.1:<pages port>), defined the way a
// userscript would so the test can trigger it and read what the page observed.
globalThis.__any__ = globalThis.__any__ || {};

const CALL = { page: "http://127.0.0.1:9/", method: "echo", params: { from: "hostile page" } };

// Opens the extension socket and, if it opens, poses as the extension.
function trySocket(url) {
  return new Promise((resolve) => {
    const seen = { opened: false, messages: [], closeCode: null };
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      resolve({ ...seen, thrown: String(e) });
      return;
    }
    ws.onopen = () => {
      seen.opened = true;
      ws.send(JSON.stringify({
        v: 1, type: "hello", protocol: 1, extension_version: "6.6.6",
        browser: { name: "Evil", version: "1" }, label: "", capabilities: [],
      }));
    };
    ws.onmessage = (event) => seen.messages.push(String(event.data).slice(0, 200));
    ws.onclose = (event) => {
      seen.closeCode = event.code;
      resolve(seen);
    };
    setTimeout(() => { try { ws.close(); } catch (e) {} resolve(seen); }, 3000);
  });
}

// A fetch; says what the page could see of the answer.
async function tryFetch(url, init) {
  try {
    const response = await fetch(url, init);
    let body = null;
    try { body = await response.text(); } catch (e) { body = `unreadable: ${e}`; }
    return { fetched: true, type: response.type, status: response.status, body };
  } catch (e) {
    return { fetched: false, error: String(e) };
  }
}

// A classic cross-site form POST (no CORS involved): a text/plain body shaped as JSON.
function tryForm(action) {
  return new Promise((resolve) => {
    const form = document.createElement("form");
    form.method = "POST";
    form.action = action;
    form.enctype = "text/plain";
    form.target = "sink";
    const input = document.createElement("input");
    input.type = "hidden";
    const json = JSON.stringify(CALL);
    // Sent as name=value: `{"page":...,"params":{"from":"hostile page","x":"` + `=` + `"}}`.
    input.name = json.slice(0, -2) + ',"x":"';
    input.value = '"}}';
    form.appendChild(input);
    document.body.appendChild(form);
    const frame = document.querySelector("iframe[name=sink]");
    const done = () => resolve({ submitted: true });
    frame.addEventListener("load", done, { once: true });
    setTimeout(() => resolve({ submitted: true, loaded: false }), 3000);
    form.submit();
  });
}

globalThis.__any__.attack = async ({ port, token = "0".repeat(64) }) => {
  const base = `http://127.0.0.1:${port}`;
  const json = JSON.stringify(CALL);
  return {
    origin: location.origin,
    socket: await trySocket(`ws://127.0.0.1:${port}/v1/extension`),
    socketLocalhost: await trySocket(`ws://localhost:${port}/v1/extension`),
    simplePost: await tryFetch(`${base}/v1/call`, {
      method: "POST", headers: { "Content-Type": "text/plain" }, body: json,
    }),
    noCorsPost: await tryFetch(`${base}/v1/call`, {
      method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: json,
    }),
    jsonPostWithToken: await tryFetch(`${base}/v1/call`, {
      method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: json,
    }),
    status: await tryFetch(`${base}/v1/status`, {}),
    shutdown: await tryFetch(`${base}/v1/shutdown`, { method: "POST", mode: "no-cors" }),
    form: await tryForm(`${base}/v1/call`),
  };
};
