// Clients: the fleet as a sortable, searchable table; one client's details, files and history.

import { api, qs } from "../api.js";
import * as live from "../live.js";
import { bytes, datetime, describe, el } from "../format.js";
import { badge, busy, button, confirmAction, facts, field, notice, pagedTable, showSecret, throttle, toolbar } from "../ui.js";

export const title = "Clients";

export async function mount(root, id) {
  return id ? details(root, id) : list(root);
}

function statusBadge(status) {
  return badge(status, { Connected: "ok", Offline: "bad", Registered: "muted" }[status]);
}

async function list(root) {
  const search = el("input", { type: "search", placeholder: "Name or host id", "aria-label": "Search clients" });
  const status = el("select", { "aria-label": "Status" },
    ...["", "Connected", "Offline", "Registered"].map((s) => el("option", { value: s, text: s || "Any status" })));
  const table = pagedTable({
    label: "Clients",
    sort: "name",
    columns: [
      { key: "name", label: "Name", sort: true, render: (c) => el("a", { href: `#/clients/${c.id}`, text: c.name }) },
      { key: "client_id", label: "Host id", sort: true },
      { key: "status", label: "Status", sort: true, render: (c) => statusBadge(c.status) },
      { key: "last_seen", label: "Last seen", sort: true, render: (c) => datetime(c.last_seen) || "never" },
      { key: "files_count", label: "Files", sort: true },
      { key: "total_size", label: "Size", sort: true, render: (c) => bytes(c.total_size) },
      { key: "ip_address", label: "Address" },
      { key: "created_at", label: "Registered", sort: true, render: (c) => datetime(c.created_at) },
    ],
    load: (p) => api("GET", "/api/clients" + qs({ ...p, q: search.value.trim(), status: status.value })),
    onRow: (c) => { location.hash = `#/clients/${c.id}`; },
    empty: "No clients match.",
  });
  let typing = null;
  search.oninput = () => { clearTimeout(typing); typing = setTimeout(() => table.first(), 200); };
  status.onchange = () => table.first();

  root.replaceChildren(
    el("h1", { text: "Clients" }),
    toolbar(field("Search", search), field("Status", status), el("span", { class: "grow" }), button("Register a client", register)),
    el("section", { class: "panel" }, table.root),
  );
  // Listening before the first load: a change made meanwhile asks for one more (reloads coalesce).
  const refresh = throttle(() => table.reload(), 500);
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

async function details(root, id) {
  const summary = el("div");
  const history = el("ul", { class: "feed", "aria-label": "Event history" });
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
    load: (p) => api("GET", `/api/clients/${id}/files` + qs(p)),
    empty: "No files yet.",
  });
  root.replaceChildren(
    el("p", {}, el("a", { href: "#/clients", text: "‹ All clients" })),
    summary,
    el("div", { class: "grid2" },
      el("section", { class: "panel" }, el("h2", { text: "Files" }), files.root),
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
        ["Files", c.files_count], ["Size", bytes(c.total_size)], ["Registered", datetime(c.created_at)], ["Version", c.version],
      ])),
    );
  };
  const entry = (e) => el("li", {}, el("time", { text: datetime(e.recorded_at) }),
    el("span", {}, describe(e), " ", el("a", { class: "type", href: `#/audit/${e.position}`, text: `#${e.position} ${e.type}` })));

  const refresh = throttle(async () => {
    try { show(await api("GET", `/api/clients/${id}`)); } catch { /* deleted: the event below says so */ }
  }, 300);
  const refreshFiles = throttle(() => files.reload(), 500);
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
    if (e.type === "FileStored" && e.data.client_id === id) refresh();
  };
  const stop = live.on("event", onEvent);
  try {
    show(await api("GET", `/api/clients/${id}`)); // first: an unknown id stops here, saying so
    const [stream] = await Promise.all([api("GET", `/api/streams/client-${id}`), files.reload()]);
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
