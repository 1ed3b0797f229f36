// Files: every stored file, filtered by client, verification and name; download, verify, delete.

import { api, qs, raw } from "../api.js";
import * as live from "../live.js";
import { bytes, datetime, el } from "../format.js";
import { badge, busy, button, confirmAction, field, notice, pagedTable, save, throttle, toolbar } from "../ui.js";

export const title = "Files";

// How long the first page took, from the view's start to the table on screen (read by the browser test).
export const timings = [];

export async function mount(root, _id, params) {
  const started = performance.now();
  const search = el("input", { type: "search", placeholder: "File name or path", "aria-label": "Search files", value: params.get("q") || "" });
  const client = el("select", { "aria-label": "Client" }, el("option", { value: "", text: "Any client" }));
  const verified = el("select", { "aria-label": "Verified" },
    el("option", { value: "", text: "Verified or not" }), el("option", { value: "true", text: "Verified" }), el("option", { value: "false", text: "Not verified" }));
  const results = new Map(); // file id → the last verification's outcome, shown until the row changes

  const verifiedCell = (f) => {
    const r = results.get(f.id);
    if (r) return badge(r.ok ? "verified" : "failed", r.ok ? "ok" : "bad");
    return f.verified ? badge("verified", "ok") : badge("not yet", "muted");
  };
  const table = pagedTable({
    label: "Files",
    sort: "-uploaded_at",
    columns: [
      { key: "filename", label: "Name", sort: true, render: (f) => el("span", { title: f.original_path, text: f.filename }) },
      { key: "client_name", label: "Client", sort: true, render: (f) => el("a", { href: `#/clients/${f.client_id}`, text: f.client_name }) },
      { key: "size", label: "Size", sort: true, render: (f) => bytes(f.size) },
      { key: "mime_type", label: "Type", sort: true },
      { key: "uploaded_at", label: "Uploaded", sort: true, render: (f) => datetime(f.uploaded_at) },
      { key: "verified", label: "Verified", sort: true, render: verifiedCell },
      { key: "downloads", label: "Downloads", sort: true },
      { key: "actions", label: "", render: (f) => el("div", { class: "row-actions" },
        button("Download", (b) => busy(b, async () => save(await raw("GET", `/api/files/${f.id}/content`), f.filename)), "ghost small"),
        button("Verify", (b) => busy(b, async () => {
          const r = await api("POST", `/api/files/${f.id}/verify`);
          results.set(f.id, r);
          const cell = b.closest("tr").querySelector('[data-col="verified"]');
          cell.replaceChildren(verifiedCell(f));
          notice(r.ok ? `${f.filename}: both checksums match` : `${f.filename}: verification failed (sha256 ${short(r.actual_sha256)}, expected ${short(r.expected_sha256)})`, r.ok ? "ok" : "error");
        }), "ghost small"),
        button("Delete", (b) => busy(b, async () => {
          if (!(await confirmAction(`Delete ${f.filename} of ${f.client_name}?`))) return;
          await api("DELETE", `/api/files/${f.id}`);
          notice(`${f.filename} deleted`);
        }), "ghost small danger-text")) },
    ],
    load: (p) => api("GET", "/api/files" + qs({ ...p, q: search.value.trim(), client: client.value, verified: verified.value })),
    empty: "No files match.",
  });
  let typing = null;
  search.oninput = () => { clearTimeout(typing); typing = setTimeout(() => table.first(), 200); };
  client.onchange = verified.onchange = () => table.first();

  root.replaceChildren(
    el("h1", { text: "Files" }),
    toolbar(field("Search", search), field("Client", client), field("Verified", verified)),
    el("section", { class: "panel" }, table.root),
  );
  // Listening before the first load: a change made meanwhile asks for one more (reloads coalesce).
  const refresh = throttle(() => table.changed(), 500);
  const stop = live.on("event", (e) => {
    if (e.type.startsWith("File")) {
      if (e.type !== "FileVerified") results.delete(e.data.file_id);
      refresh();
    }
  });
  await table.reload();
  const ms = performance.now() - started;
  timings.push(ms);
  root.dataset.firstPageMs = ms.toFixed(1);

  // The client filter's choices load after the first page, which must not wait for them.
  api("GET", "/api/clients?per_page=500&sort=name").then((page) => {
    client.append(...page.items.map((c) => el("option", { value: c.id, text: c.name })));
    if (params.get("client")) { client.value = params.get("client"); table.first(); }
  }).catch(() => { /* the filter stays at "any client" */ });

  return stop;
}

function short(hash) {
  return hash ? hash.slice(0, 12) + "…" : "unreadable";
}
