// Clients: the fleet as a sortable, searchable table; one client's details, files and history.

import { api, qs, raw } from "../api.js";
import * as live from "../live.js";
import { bytes, datetime, describe, duration, el } from "../format.js";
import { badge, busy, button, confirmAction, facts, field, notice, pagedTable, save, showSecret, throttle, toolbar } from "../ui.js";

export const title = "Clients";

export async function mount(root, id, params) {
  return id ? details(root, id, params) : list(root, params);
}

// A client's last backup, with "overdue" when it is.
function lastBackup(c) {
  const when = datetime(c.last_backup_at) || "never";
  return c.backup_overdue_since ? el("span", {}, badge("overdue", "warn"), " ", when) : when;
}

// An interval in seconds, as people say it.
function every(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} day${seconds === 86400 ? "" : "s"}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function statusBadge(status) {
  return badge(status, { Connected: "ok", Offline: "bad", Registered: "muted" }[status]);
}

async function list(root, params) {
  const search = el("input", { type: "search", placeholder: "Name or host id", "aria-label": "Search clients" });
  const status = el("select", { "aria-label": "Status" },
    ...["", "Connected", "Offline", "Registered"].map((s) => el("option", { value: s, text: s || "Any status" })));
  const backups = el("select", { "aria-label": "Backups" },
    el("option", { value: "", text: "Any" }), el("option", { value: "true", text: "Overdue" }), el("option", { value: "false", text: "On time" }));
  backups.value = params?.get("overdue") || "";
  const table = pagedTable({
    label: "Clients",
    sort: "name",
    columns: [
      { key: "name", label: "Name", sort: true, render: (c) => el("a", { href: `#/clients/${c.id}`, text: c.name }) },
      { key: "client_id", label: "Host id", sort: true },
      { key: "status", label: "Status", sort: true, render: (c) => statusBadge(c.status) },
      { key: "last_seen", label: "Last seen", sort: true, render: (c) => datetime(c.last_seen) || "never" },
      { key: "last_backup_at", label: "Last backup", sort: true, render: lastBackup },
      { key: "files_count", label: "Files", sort: true },
      { key: "total_size", label: "Size", sort: true, render: (c) => bytes(c.total_size) },
      { key: "ip_address", label: "Address" },
      { key: "created_at", label: "Registered", sort: true, render: (c) => datetime(c.created_at) },
    ],
    load: (p) => api("GET", "/api/clients" + qs({ ...p, q: search.value.trim(), status: status.value, overdue: backups.value })),
    onRow: (c) => { location.hash = `#/clients/${c.id}`; },
    empty: "No clients match.",
  });
  let typing = null;
  search.oninput = () => { clearTimeout(typing); typing = setTimeout(() => table.first(), 200); };
  status.onchange = backups.onchange = () => table.first();

  root.replaceChildren(
    el("h1", { text: "Clients" }),
    toolbar(field("Search", search), field("Status", status), field("Backups", backups), el("span", { class: "grow" }), button("Register a client", register)),
    el("section", { class: "panel" }, table.root),
  );
  // Listening before the first load: a change made meanwhile asks for one more (reloads coalesce).
  const refresh = throttle(() => table.changed(), 500);
  const stopEvents = live.on("event", (e) => {
    if (e.type.startsWith("Client") || e.type === "FileStored" || e.type === "FileDeleted") refresh();
  });
  // A heartbeat is not an event: its "last seen" comes as a presence message, and moves the row in place.
  const stopPresence = live.on("presence", (p) => {
    const row = table.root.querySelector(`a[href="#/clients/${p.client_id}"]`)?.closest("tr");
    const cell = row?.querySelector('td[data-col="last_seen"]');
    if (cell) cell.textContent = datetime(p.last_seen);
  });
  const stop = () => { stopEvents(); stopPresence(); };
  await table.reload();
  return stop;
}

async function register() {
  const name = el("input", { required: "", "aria-label": "Name", placeholder: "backup-host-01" });
  const host = el("input", { "aria-label": "Host id", placeholder: "optional: the host's own id" });
  const address = el("input", { "aria-label": "Address", placeholder: "optional: 10.0.0.7" });
  const error = el("p", { class: "error", hidden: "" });
  const ok = el("button", { type: "submit", text: "Register" });
  const cancel = el("button", { type: "button", class: "ghost", text: "Cancel" });
  const form = el("form", {}, el("h2", { text: "Register a client" }), field("Name", name), field("Host id", host),
    field("Address", address), error, el("div", { class: "actions" }, cancel, ok));
  const d = el("dialog", {}, form);
  cancel.onclick = () => { d.close(); d.remove(); };
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      const body = { name: name.value.trim() };
      if (host.value.trim()) body.client_id = host.value.trim();
      if (address.value.trim()) body.ip_address = address.value.trim();
      const made = await api("POST", "/api/clients", body);
      d.close();
      d.remove();
      showSecret("Client registered", `The token of ${made.client.name}; it is shown only this once.`, made.token);
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
    }
  };
  document.body.append(d);
  d.showModal();
}

async function details(root, id, params) {
  const summary = el("div");
  const history = el("ul", { class: "feed", "aria-label": "Event history", tabindex: "0" });
  const storage = el("div", { role: "region", "aria-label": "Storage over time" }, el("p", { class: "muted", text: "Loading…" }));
  const files = pagedTable({
    label: "The client's files",
    sort: "-uploaded_at",
    perPage: 10,
    columns: [
      { key: "filename", label: "Name", sort: true, render: (f) => el("a", { href: `#/files?q=${encodeURIComponent(f.filename)}`, text: f.filename }) },
      { key: "size", label: "Size", sort: true, render: (f) => bytes(f.size) },
      { key: "verified", label: "Verified", sort: true, render: (f) => (f.verified ? badge("verified", "ok") : badge("not yet", "muted")) },
      { key: "uploaded_at", label: "Uploaded", sort: true, render: (f) => datetime(f.uploaded_at) },
    ],
    load: (p) => api("GET", `/api/clients/${id}/files` + qs({ ...p, run: ofRun })),
    empty: "No files yet.",
  });
  // The files table shows one run's files when asked from the runs table.
  let ofRun = "";
  const filesNote = el("p", { class: "muted", hidden: "" });
  const restore = restorePanel(id, params.get("restore"));
  const runs = pagedTable({
    label: "Backup runs",
    sort: "-started_at",
    perPage: 10,
    columns: [
      { key: "started_at", label: "Started", sort: true, render: (r) => datetime(r.started_at) },
      { key: "duration_ms", label: "Took", sort: true, render: (r) => (r.duration_ms == null ? "running…" : (r.duration_ms < 1000 ? `${r.duration_ms} ms` : duration(r.duration_ms / 1000))) },
      { key: "status", label: "Outcome", sort: true, render: (r) => badge(r.status, { ok: "ok", partial: "warn", failed: "bad", running: "muted" }[r.status]) },
      { key: "new", label: "New · changed · deleted · failed", render: (r) => `${r.new} · ${r.changed} · ${r.deleted} · ${r.failed}` },
      { key: "bytes_sent", label: "Sent", sort: true, render: (r) => `${bytes(r.bytes_sent)} (${bytes(r.bytes_skipped)} skipped)` },
      { key: "actions", label: "", render: (r) => el("span", { class: "actions" },
        button("Files", () => { ofRun = r.id; filesNote.hidden = false; filesNote.replaceChildren(`The files of the run of ${datetime(r.started_at)} `, button("Show all", () => { ofRun = ""; filesNote.hidden = true; files.reload(); }, "ghost small")); files.reload(); }, "ghost small"),
        ...(r.finished_position ? [button("Restore", () => restore.at(r.finished_position), "ghost small")] : [])) },
    ],
    load: (p) => api("GET", `/api/clients/${id}/runs` + qs(p)),
    empty: "No backup run yet: runs appear here when `cairn agent run` backs this client up.",
  });
  root.replaceChildren(
    el("p", {}, el("a", { href: "#/clients", text: "‹ All clients" })),
    summary,
    el("section", { class: "panel" }, el("h2", { text: "Storage over time" }), storage),
    restore,
    el("section", { class: "panel" }, el("h2", { text: "Backup runs" }), runs.root),
    el("div", { class: "grid2" },
      el("section", { class: "panel" }, el("h2", { text: "Files" }), filesNote, files.root),
      el("section", { class: "panel" }, el("h2", { text: "Event history" }), history)),
  );

  const show = (c) => {
    const actions = el("div", { class: "actions" },
      button("Disconnect", (b) => busy(b, async () => {
        await api("POST", `/api/clients/${id}/disconnect`);
        notice(`${c.name} disconnected`);
      }), "ghost"),
      button("Rotate token", (b) => busy(b, async () => {
        if (!(await confirmAction(`Rotate the token of ${c.name}? The old token stops working at once.`, "Rotate"))) return;
        const made = await api("POST", `/api/clients/${id}/token`);
        showSecret("New token", `The new token of ${c.name}; it is shown only this once.`, made.token);
      }), "ghost"),
      button("Delete", (b) => busy(b, async () => {
        if (!(await confirmAction(`Delete ${c.name} and its ${c.files_count} files? This cannot be undone.`))) return;
        await api("DELETE", `/api/clients/${id}`);
        notice(`${c.name} deleted`);
        location.hash = "#/clients";
      }), "danger"));
    actions.querySelector("button").disabled = c.status !== "Connected";
    summary.replaceChildren(
      el("div", { class: "title-row" }, el("h1", { text: c.name }), statusBadge(c.status), el("span", { class: "grow" }), actions),
      el("section", { class: "panel" }, facts([
        ["Id", c.id], ["Host id", c.client_id], ["Address", c.ip_address], ["Last seen", datetime(c.last_seen) || "never"],
        ["Last backup", lastBackup(c)], ["Expected every", intervalControl(c)],
        ["Files", c.files_count], ["Size", bytes(c.total_size)], ["Registered", datetime(c.created_at)], ["Version", c.version],
      ])),
    );
  };
  // The expected backup interval, changed in place.
  const intervalControl = (c) => {
    const hours = el("input", { type: "number", min: "1", max: "8784", step: "1", value: String(Math.max(1, Math.round(c.backup_interval_seconds / 3600))), "aria-label": "Expected backup interval in hours", class: "hours" });
    const save = button("Set", (b) => busy(b, async () => {
      const h = Number(hours.value);
      if (!Number.isInteger(h) || h < 1 || h > 8784) throw new Error("the interval is a whole number of hours, 1 to 8784");
      await api("PATCH", `/api/clients/${id}`, { backup_interval_seconds: h * 3600 });
      notice(`${c.name} is now expected to back up every ${every(h * 3600)}`);
    }), "ghost small");
    return el("span", { class: "interval" }, every(c.backup_interval_seconds), " · ", hours, " h ", save);
  };
  const drawStorage = async () => {
    try { storage.replaceChildren(storageChart(await api("GET", `/api/clients/${id}/storage`))); } catch { /* deleted */ }
  };
  const refreshStorage = throttle(drawStorage, 2000);
  const entry = (e) => el("li", {}, el("time", { text: datetime(e.recorded_at) }),
    el("span", {}, describe(e), " ", el("a", { class: "type", href: `#/audit/${e.position}`, text: `#${e.position} ${e.type}` })));

  const refresh = throttle(async () => {
    try { show(await api("GET", `/api/clients/${id}`)); } catch { /* deleted: the event below says so */ }
  }, 300);
  const refreshFiles = throttle(() => files.changed(), 500);
  const refreshRuns = throttle(() => runs.changed(), 300);
  let early = [];   // events that arrive while the page loads; null once loaded
  let newest = 0;   // the history's last position
  const onEvent = (e) => {
    if (early) { early.push(e); return; }
    if (e.stream === `client-${id}` && e.position > newest) {
      newest = e.position;
      history.prepend(entry(e));
      if (e.type === "ClientDeleted") {
        summary.prepend(el("p", { class: "error", text: "This client has been deleted." }));
      } else refresh();
    }
    if (e.data && e.data.client_id === id && e.type.startsWith("File")) refreshFiles();
    if (e.data && e.data.client_id === id && e.type.startsWith("BackupRun")) refreshRuns();
    if (e.type === "FileStored" && e.data.client_id === id) refresh();
    if ((e.type === "FileStored" || e.type === "FileDeleted") && e.data.client_id === id) refreshStorage();
  };
  const stop = live.on("event", onEvent);
  try {
    show(await api("GET", `/api/clients/${id}`)); // first: an unknown id stops here, saying so
    const [stream] = await Promise.all([api("GET", `/api/streams/client-${id}`), files.reload(), runs.reload(), drawStorage()]);
    history.replaceChildren(...stream.events.slice().reverse().map(entry));
    newest = stream.events.length ? stream.events[stream.events.length - 1].position : 0;
  } catch (e) {
    stop();
    throw e;
  }
  const waiting = early;
  early = null;
  waiting.forEach(onEvent);
  return stop;
}

// A client's bytes stored over time, as a step chart (SVG; the points come from its FileStored and FileDeleted).
function storageChart(h) {
  if (!h.points.length) return el("p", { class: "muted", text: "Nothing stored yet." });
  const W = 600, H = 100;
  const t0 = Date.parse(h.points[0].at), t1 = Math.max(Date.parse(h.points[h.points.length - 1].at), Date.now());
  const top = Math.max(1, ...h.points.map((p) => p.bytes));
  const x = (at) => (t1 === t0 ? W : ((Date.parse(at) - t0) / (t1 - t0)) * W);
  const y = (b) => H - (b / top) * (H - 4);
  const steps = [];
  h.points.forEach((p, i) => {
    if (i) steps.push(`${x(p.at).toFixed(1)},${y(h.points[i - 1].bytes).toFixed(1)}`);
    steps.push(`${x(p.at).toFixed(1)},${y(p.bytes).toFixed(1)}`);
  });
  steps.push(`${W},${y(h.points[h.points.length - 1].bytes).toFixed(1)}`);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "storage-chart");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const last = h.points[h.points.length - 1];
  svg.setAttribute("aria-label", `Storage over time: now ${bytes(last.bytes)} in ${last.files} files, at most ${bytes(top)}`);
  const area = document.createElementNS(ns, "polygon");
  area.setAttribute("class", "area");
  area.setAttribute("points", `0,${H} ${steps.join(" ")} ${W},${H}`);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", steps.join(" "));
  svg.append(area, line);
  return el("div", {}, svg, el("p", { class: "muted", text: `now ${bytes(last.bytes)} in ${last.files} files · at most ${bytes(top)} · ${h.changes} changes since ${datetime(h.points[0].at)}` }));
}

// Restore: the client's files as they were at a moment (a time, or a position from Audit), each against now, and
// the archive of them. Opened from an Audit event (`?restore=POSITION`), it shows that moment at once.
function restorePanel(id, from) {
  const when = el("input", { type: "datetime-local", "aria-label": "Restore as of" });
  const position = el("input", { type: "number", min: "1", placeholder: "or a position", "aria-label": "Restore as of position", class: "hours" });
  const result = el("div", { role: "region", "aria-label": "Files then", "aria-live": "polite" });
  const at = () => (position.value ? position.value : when.value ? new Date(when.value).toISOString() : "");
  const show = button("Show the files then", (b) => busy(b, async () => {
    const p = await api("GET", `/api/clients/${id}/restore` + qs({ at: at() }));
    const kinds = { unchanged: "ok", changed: "warn", deleted: "bad", added: "muted" };
    const row = (f) => el("tr", {},
      el("td", { "data-col": "path", title: f.path, text: f.path }), el("td", { text: bytes(f.size) }),
      el("td", {}, badge(f.since === "unchanged" ? "unchanged" : `${f.since} since`, kinds[f.since])),
      el("td", {}, f.available ? "yes" : badge("purged", "bad")));
    const download = (format) => button(`Download ${format}`, (d) => busy(d, async () => {
      save(await raw("GET", `/api/clients/${id}/archive` + qs({ at: String(p.position), format })), `client-${id}-at-${p.position}.${format}`);
    }), format === "tar" ? "" : "ghost");
    result.dataset.position = String(p.position);
    result.replaceChildren(
      el("p", {}, `${p.files.length} files (${bytes(p.bytes)}) as of position ${p.position}`,
        p.added_since.length ? `; ${p.added_since.length} added since` : "", " "),
      el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Files then, scrollable" }, el("table", { "aria-label": "Files then" },
        el("thead", {}, el("tr", {}, ...["Path", "Size", "Since", "Content kept"].map((h) => el("th", { text: h })))),
        el("tbody", {}, ...(p.files.length ? p.files.map(row) : [el("tr", {}, el("td", { colspan: "4", class: "empty", text: "No files then." }))]),
          ...p.added_since.map(row)))),
      el("div", { class: "actions" }, download("tar"), download("zip")));
  }));
  const panel = el("section", { class: "panel", id: "restore" }, el("h2", { text: "Restore" }),
    el("p", { class: "muted", text: "The files as they were at a moment; the archive holds them with a manifest of their checksums. From a shell: cairn restore --client ID --at POS --to DIR." }),
    toolbar(field("As of", when), field("Position", position), show), result);
  // Shows the files as of a position, the panel in view (from Audit, or a run's end).
  panel.at = (p) => {
    position.value = String(p);
    when.value = "";
    show.click();
    panel.scrollIntoView({ block: "start" });
  };
  if (/^\d+$/.test(from || "")) queueMicrotask(() => panel.at(from));
  return panel;
}
