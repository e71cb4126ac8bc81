// Runs in: the extension's options page. Shows the stored server address and label and
// sends edits to the service worker ({type: "set_config"}), which validates and saves
// them; the Rust core decides, this page only relays.

const $ = (id) => document.getElementById(id);

async function load() {
  const stored = await chrome.storage.local.get(["server", "label", "max_tabs"]);
  $("server").value = stored.server ?? "";
  $("label").value = stored.label ?? "";
  $("max_tabs").value = stored.max_tabs ? String(stored.max_tabs) : "";
  const s = await chrome.runtime.sendMessage({ type: "status" });
  if (s?.ok) {
    $("effective").textContent =
      `In use: ${s.config.server} (${s.config.server_source.replace("_", " ")}), ` +
      `label "${s.config.label}" (${s.config.label_source.replace("_", " ")}), ` +
      `${s.config.max_tabs} idle tabs kept (${s.config.max_tabs_source.replace("_", " ")}).`;
  }
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const r = await chrome.runtime.sendMessage({
    type: "set_config",
    server: $("server").value,
    label: $("label").value,
    max_tabs: $("max_tabs").value,
  });
  $("result").textContent = r?.ok ? "saved" : (r?.error ?? "not saved");
  setTimeout(load, 200);
});

load();
