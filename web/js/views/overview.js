// Overview: the figures an operator watches, live.

import { api } from "../api.js";
import * as live from "../live.js";
import { bytes, datetime, describe, duration, el, time } from "../format.js";
import { badge, throttle } from "../ui.js";

const HISTORY = 60;
// Lines the activity list keeps.
const KEEP = 200;

export const title = "Overview";

// The events that change what needs attention.
const CONCERNS = new Set(["TransferFailed", "FileVerified", "FileStored", "FileDeleted", "ClientBackupOverdue",
  "ClientConnected", "ClientDisconnected", "ClientDeleted", "ClientRegistered", "BackupRunFinished"]);

export async function mount(root) {
  const cards = el("section", { class: "cards", "aria-label": "Figures" });
  const cpu = spark("CPU %"), mem = spark("Memory %");
  const activity = el("ul", { class: "feed", "aria-label": "Live activity", tabindex: "0" });
  const transfers = el("div", { class: "transfers", role: "region", "aria-label": "Transfers in progress", tabindex: "0" }, el("p", { class: "empty", text: "No transfers in progress." }));
  const attention = el("div", { class: "attention", role: "region", "aria-label": "Needs attention", tabindex: "0" }, el("p", { class: "muted", text: "Looking…" }));
  root.replaceChildren(
    el("h1", { text: "Overview" }),
    cards,
    el("div", { class: "grid3" },
      el("section", { class: "panel" }, el("h2", { text: "Needs attention" }), attention),
      el("section", { class: "panel" }, el("h2", { text: "Telemetry" }), cpu.root, mem.root),
      el("section", { class: "panel" }, el("h2", { text: "Transfers in progress" }), transfers)),
    el("section", { class: "panel" }, el("h2", { text: "Live activity" }, el("span", { class: "muted", text: " · newest at the bottom" })), activity),
  );
  const history = (samples) => {
    cpu.fill(samples.map((s) => s.cpu_percent));
    mem.fill(samples.map((s) => s.memory_percent));
  };
  history(live.telemetryHistory());
  const showAttention = throttle(async () => {
    try { renderAttention(attention, await api("GET", "/api/attention")); } catch { /* shown at the next change */ }
  }, 1000);

  const figures = new Map();
  // Cards are updated in place, and a figure that moved flashes (uptime ticks quietly).
  const show = (s) => {
    [
      ["Clients connected", s.clients_connected, `of ${s.total_clients}`],
      ["Files", s.total_files],
      ["Storage used", bytes(s.storage_used_bytes), `${bytes(s.stored_bytes)} after dedupe`],
      // The bars beside it are the one source of what is under way.
      ["Transfers active", bars.size, `${s.total_transfers} in all`],
      ["Events", s.events_total, `head ${s.head_position}`],
      ["Uptime", duration(s.uptime_seconds)],
    ].forEach(([label, value, sub]) => {
      let c = figures.get(label);
      if (!c) {
        c = card(label);
        figures.set(label, c);
        cards.append(c.root);
      }
      c.set(String(value ?? "–"), sub || "", label !== "Uptime");
    });
  };
  const bars = new Map();
  let lastStats = null;
  const recount = () => { if (lastStats) show(lastStats); };
  // A bar is made when a transfer starts (or was under way when the page loaded) and removed when it ends;
  // progress only moves a bar that exists, so a late progress message never brings back a finished one.
  // Bars keep their places: a finished one leaves an empty slot that the next transfer takes, and only empty
  // slots at the end go, so no bar ever moves under the reader (no layout shift).
  const slots = [];
  const startBar = (id, filename, done, total) => {
    if (bars.has(id)) return;
    if (!bars.size) transfers.querySelector("p.empty")?.remove();
    const bar = progressBar(filename);
    bars.set(id, bar);
    const free = slots.findIndex((s) => !s.firstChild);
    if (free >= 0) slots[free].append(bar);
    else {
      const slot = el("div", { class: "slot" }, bar);
      slots.push(slot);
      transfers.append(slot);
    }
    bar.update(done, total);
    recount();
  };
  const endBar = (id) => {
    const bar = bars.get(id);
    if (!bar) return;
    bar.remove();
    bars.delete(id);
    while (slots.length && !slots[slots.length - 1].firstChild) slots.pop().remove();
    if (!bars.size) transfers.replaceChildren(el("p", { class: "empty", text: "No transfers in progress." }));
    recount();
  };
  const finished = new Set(); // transfers seen ending, so that a buffered start does not bring them back
  // Whose an event is: clients' names by id, and transfers' clients, learnt from what the page has seen.
  const names = new Map();
  const transferClient = new Map();
  const whose = (e) => {
    const d = e.data || {};
    const id = e.stream.startsWith("client-") ? e.stream.slice(7) : d.client_id || transferClient.get(d.transfer_id);
    if (id && (d.name || d.client_name)) names.set(id, d.name || d.client_name);
    if (d.transfer_id && d.client_id) transferClient.set(d.transfer_id, d.client_id);
    return id ? names.get(id) || `client ${id.slice(0, 8)}` : undefined;
  };
  // What the spacer kept goes when the page is hidden or the reader acts on the list (a shift they cause is not
  // counted, and they expect the list to settle), or when it grows past 100,000 px.
  const spacer = el("li", { class: "spacer", hidden: "" }, el("a", { href: "#/audit", text: "Older events are in the Audit view" }));
  const compact = () => {
    if (spacer.hidden) return;
    spacer.style.height = "0px";
    spacer.hidden = true;
    activity.scrollTop = activity.scrollHeight;
  };
  activity.addEventListener("pointerdown", compact);
  activity.addEventListener("keydown", compact);
  const onHidden = () => { if (document.hidden) compact(); };
  document.addEventListener("visibilitychange", onHidden);
  let newest = 0;   // the activity list's last position
  let buffer = [];  // events that arrive while the page loads; null once loaded
  const onEvent = (e) => {
    if (buffer) { buffer.push(e); return; }
    if (e.type === "TransferStarted" && !finished.has(e.data.transfer_id)) {
      if (e.data.client_id) transferClient.set(e.data.transfer_id, e.data.client_id);
      startBar(e.data.transfer_id, e.data.filename, 0, e.data.expected_bytes);
    }
    if (e.type === "TransferCompleted" || e.type === "TransferFailed") {
      finished.add(e.data.transfer_id);
      endBar(e.data.transfer_id);
    }
    if (CONCERNS.has(e.type)) showAttention();
    if (e.position <= newest) return; // already in the list the page loaded
    newest = e.position;
    const li = item(e.recorded_at, e.type, describe(e, whose(e)));
    li.classList.add("new");
    // Newest at the bottom, followed while the list is scrolled to its end: the lines already shown never move
    // (a line added at the top moved every other one, a layout shift each time).
    const following = activity.scrollHeight - activity.scrollTop - activity.clientHeight < 24;
    activity.append(li);
    // The oldest lines go, their height kept by the spacer above the rest: removing them would move every
    // line after them, which is a layout shift even when the list scrolls to make up for it.
    let freed = 0;
    while (activity.children.length > KEEP + 1) {
      freed += spacer.nextSibling.getBoundingClientRect().height;
      spacer.nextSibling.remove();
    }
    if (freed) {
      spacer.hidden = false;
      spacer.style.height = `${parseFloat(spacer.style.height || "0") + freed}px`;
      if (parseFloat(spacer.style.height) > 100000) compact();
    }
    if (following) activity.scrollTop = activity.scrollHeight;
  };
  const stops = [
    live.on("stats", (s) => {
      lastStats = s;
      show(s);
      if (s.telemetry) {
        cpu.push(s.telemetry.cpu_percent);
        mem.push(s.telemetry.memory_percent);
      }
    }),
    live.on("event", onEvent),
    live.on("progress", (p) => {
      transferClient.set(p.transfer_id, p.client_id);
      bars.get(p.transfer_id)?.update(p.bytes, p.expected_bytes);
    }),
    live.on("history", history),
    () => document.removeEventListener("visibilitychange", onHidden),
  ];
  try {
    const [status, recent, running, concerns, fleet] = await Promise.all([
      api("GET", "/api/status"),
      api("GET", "/api/activity?limit=30"),
      // Uploads already under way when the page opened; progress messages move them on.
      api("GET", "/api/transfers?status=InProgress&per_page=100"),
      api("GET", "/api/attention"),
      // Every client's name, so that a line about one registered before the page opened says whose it is.
      api("GET", "/api/clients?per_page=500"),
    ]);
    for (const c of fleet.items) names.set(c.id, c.name);
    lastStats = status;
    renderAttention(attention, concerns);
    for (const i of recent.items) if (i.client_id && i.client_name) names.set(i.client_id, i.client_name);
    activity.replaceChildren(spacer, ...recent.items.slice().reverse().map((i) => item(i.recorded_at, i.type, i.summary)));
    activity.scrollTop = activity.scrollHeight;
    newest = recent.items.length ? recent.items[0].position : 0;
    for (const t of running.items) {
      if (t.client_id) transferClient.set(t.id, t.client_id);
      startBar(t.id, t.filename, t.bytes, t.expected_bytes);
    }
    show(status);
  } catch (e) {
    stops.forEach((stop) => stop());
    throw e;
  }
  const waiting = buffer;
  buffer = null;
  waiting.forEach(onEvent);
  return () => stops.forEach((stop) => stop());
}

function card(label) {
  const value = el("div", { class: "value" });
  const sub = el("div", { class: "sub" });
  const root = el("div", { class: "card" }, el("div", { class: "label", text: label }), value, sub);
  return {
    root,
    set(v, s, flash) {
      if (flash && value.textContent && value.textContent !== v) {
        root.classList.remove("changed");
        void root.offsetWidth; // restart the animation
        root.classList.add("changed");
      }
      value.textContent = v;
      sub.textContent = s;
    },
  };
}

function item(at, type, summary) {
  return el("li", {}, el("time", { text: time(at) }), el("span", {}, summary, " ", el("span", { class: "type", text: type })));
}

// "Needs attention": each failure or client that needs looking at, linking to its place.
function renderAttention(box, a) {
  const lines = [];
  const line = (kind, text, href, at) => lines.push(el("li", {}, badge(kind[0], kind[1]),
    el("a", { class: "what", href, text, title: text }), el("time", { class: "muted", text: datetime(at) })));
  // Oldest first in each section, so that a new one adds a line at the end instead of moving the others.
  for (const t of a.failed_transfers.items.slice().reverse()) {
    line(["failed", "bad"], `${t.client_name || "a deleted client"}: ${t.filename} (${t.error || "failed"})`, t.client_id ? `#/clients/${t.client_id}` : "#/files", t.at);
  }
  for (const v of a.failed_verifications.items.slice().reverse()) {
    line(["corrupt", "bad"], `${v.client_name}: ${v.filename} failed verification`, `#/files?q=${encodeURIComponent(v.filename)}`, v.at);
  }
  for (const r of a.troubled_runs.items.slice().reverse()) {
    line([r.status, r.status === "failed" ? "bad" : "warn"], `${r.client_name || "a deleted client"}: backup run ${r.status}, ${r.failed} file${r.failed === 1 ? "" : "s"} not backed up${r.error ? ` (${r.error})` : ""}`, `#/clients/${r.client_id}`, r.at);
  }
  for (const c of a.overdue_clients.items) {
    line(["overdue", "warn"], `${c.name}: no backup since ${c.last_backup_at ? datetime(c.last_backup_at) : "it registered"}`, `#/clients/${c.id}`, c.backup_overdue_since);
  }
  for (const c of a.offline_clients.items) {
    line(["offline", "muted"], `${c.name} is offline`, `#/clients/${c.id}`, c.last_seen);
  }
  const total = a.failed_transfers.count + a.failed_verifications.count + a.overdue_clients.count + a.offline_clients.count + a.troubled_runs.count;
  box.dataset.count = String(total);
  box.replaceChildren(total
    ? el("ul", {}, ...lines)
    : el("p", { class: "all-clear", text: "All clear: no failed transfer, verification or backup run in the last 24 h, no client overdue or offline." }));
  if (total > lines.length) box.append(el("p", { class: "muted", text: `and ${total - lines.length} more` }));
}

function spark(label) {
  const values = [];
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${HISTORY} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  svg.append(line);
  const caption = el("div", { class: "label", text: label });
  return {
    root: el("div", {}, caption, svg),
    push(v) {
      values.push(Math.max(0, Math.min(100, Number(v) || 0)));
      if (values.length > HISTORY) values.shift();
      this.draw();
    },
    // The server's history (its last samples), replacing what the page had.
    fill(all) {
      values.splice(0, values.length, ...all.slice(-HISTORY).map((v) => Math.max(0, Math.min(100, Number(v) || 0))));
      if (values.length) this.draw();
    },
    draw() {
      line.setAttribute("points", values.map((y, x) => `${x},${100 - y}`).join(" "));
      caption.textContent = `${label}: ${values[values.length - 1].toFixed(1)}`;
      svg.setAttribute("aria-label", caption.textContent);
    },
  };
}

// A transfer's bar: how far, how fast (smoothed over the last few seconds) and how long it has left.
function progressBar(name) {
  const fill = el("div", { class: "fill" });
  fill.style.width = "0%";
  const figure = el("span", { class: "figures" });
  const track = el("div", { class: "track", role: "progressbar", "aria-label": name, "aria-valuemin": "0", "aria-valuemax": "100" }, fill);
  const root = el("div", { class: "progress" }, el("div", { class: "name" }, el("span", { text: name, title: name }), figure), track);
  let last = null;  // { at, done }
  let speed = null; // bytes a second, smoothed
  root.update = (done, total) => {
    const now = performance.now();
    if (last && now > last.at && done >= last.done) {
      const rate = ((done - last.done) * 1000) / (now - last.at);
      speed = speed === null ? rate : 0.7 * speed + 0.3 * rate;
    }
    last = { at: now, done };
    const pct = total ? Math.min(100, (100 * done) / total) : 0;
    fill.style.width = `${pct}%`;
    track.setAttribute("aria-valuenow", String(Math.round(pct)));
    const parts = [total ? `${bytes(done)} of ${bytes(total)}` : bytes(done)];
    if (speed) {
      parts.push(`${bytes(speed)}/s`);
      if (total && total > done) parts.push(`${duration(Math.ceil((total - done) / speed))} left`);
    }
    figure.textContent = parts.join(" · ");
  };
  return root;
}
