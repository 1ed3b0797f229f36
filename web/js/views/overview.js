// Overview: the figures an operator watches, live.

import { api } from "../api.js";
import * as live from "../live.js";
import { bytes, describe, duration, el, time } from "../format.js";

const HISTORY = 60;

export const title = "Overview";

export async function mount(root) {
  const cards = el("section", { class: "cards", "aria-label": "Figures" });
  const cpu = spark("CPU %"), mem = spark("Memory %");
  const activity = el("ul", { class: "feed", "aria-label": "Live activity" });
  const transfers = el("div", { "aria-label": "Transfers in progress" }, el("p", { class: "empty", text: "No transfers in progress." }));
  root.replaceChildren(
    el("h1", { text: "Overview" }),
    cards,
    el("div", { class: "grid2" },
      el("section", { class: "panel" }, el("h2", { text: "Telemetry" }), cpu.root, mem.root),
      el("section", { class: "panel" }, el("h2", { text: "Transfers in progress" }), transfers)),
    el("section", { class: "panel", style: "margin-top:1rem" }, el("h2", { text: "Live activity" }), activity),
  );

  const figures = new Map();
  // Cards are updated in place, and a figure that moved flashes (uptime ticks quietly).
  const show = (s) => {
    [
      ["Clients connected", s.clients_connected, `of ${s.total_clients}`],
      ["Files", s.total_files],
      ["Storage used", bytes(s.storage_used_bytes), `${bytes(s.stored_bytes)} after dedupe`],
      ["Transfers active", s.active_transfers, `${s.total_transfers} in all`],
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
  const showBar = (id, filename, done, total) => {
    let bar = bars.get(id);
    if (!bar) {
      if (!bars.size) transfers.replaceChildren();
      bar = progressBar(filename);
      bars.set(id, bar);
      transfers.append(bar);
    }
    bar.update(done, total);
  };
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
  let newest = 0;   // the activity list's last position
  let buffer = [];  // events that arrive while the page loads; null once loaded
  const onEvent = (e) => {
    if (buffer) { buffer.push(e); return; }
    if ((e.type === "TransferCompleted" || e.type === "TransferFailed") && bars.has(e.data.transfer_id)) {
      bars.get(e.data.transfer_id).remove();
      bars.delete(e.data.transfer_id);
      if (!bars.size) transfers.replaceChildren(el("p", { class: "empty", text: "No transfers in progress." }));
    }
    if (e.position <= newest) return; // already in the list the page loaded
    newest = e.position;
    const li = item(e.recorded_at, e.type, describe(e, whose(e)));
    li.classList.add("new");
    activity.prepend(li);
    while (activity.children.length > 200) activity.lastChild.remove();
  };
  const stops = [
    live.on("stats", (s) => {
      show(s);
      if (s.telemetry) {
        cpu.push(s.telemetry.cpu_percent);
        mem.push(s.telemetry.memory_percent);
      }
    }),
    live.on("event", onEvent),
    live.on("progress", (p) => {
      transferClient.set(p.transfer_id, p.client_id);
      showBar(p.transfer_id, p.filename, p.bytes, p.expected_bytes);
    }),
  ];
  try {
    const [status, recent, running] = await Promise.all([
      api("GET", "/api/status"),
      api("GET", "/api/activity?limit=30"),
      // Uploads already under way when the page opened; progress messages move them on.
      api("GET", "/api/transfers?status=InProgress&per_page=20"),
    ]);
    show(status);
    for (const i of recent.items) if (i.client_id && i.client_name) names.set(i.client_id, i.client_name);
    activity.replaceChildren(...recent.items.map((i) => item(i.recorded_at, i.type, i.summary)));
    newest = recent.items.length ? recent.items[0].position : 0;
    for (const t of running.items) {
      if (t.client_id) transferClient.set(t.id, t.client_id);
      if (!bars.has(t.id)) showBar(t.id, t.filename, t.bytes, t.expected_bytes);
    }
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
      line.setAttribute("points", values.map((y, x) => `${x},${100 - y}`).join(" "));
      caption.textContent = `${label}: ${values[values.length - 1].toFixed(1)}`;
      svg.setAttribute("aria-label", caption.textContent);
    },
  };
}

function progressBar(name) {
  const fill = el("div", { class: "fill", style: "width:0%" });
  const figure = el("span");
  const root = el("div", { class: "progress" }, el("div", { class: "name" }, el("span", { text: name }), figure), el("div", { class: "track" }, fill));
  root.update = (done, total) => {
    const pct = total ? Math.min(100, (100 * done) / total) : 0;
    fill.style.width = `${pct}%`;
    figure.textContent = total ? `${bytes(done)} of ${bytes(total)}` : bytes(done);
  };
  return root;
}
