// Logs: a live tail, newest at the bottom; filters, search, pause (scrolling up pauses too), clear, export.

import { api, qs, raw } from "../api.js";
import * as live from "../live.js";
import { datetime, el } from "../format.js";
import { busy, button, confirmAction, field, notice, save, toolbar } from "../ui.js";

export const title = "Logs";

const LEVELS = ["debug", "info", "warning", "error", "critical"];
const KEEP = 1000; // lines kept on screen; the table keeps them all

export async function mount(root) {
  const level = el("select", { "aria-label": "Level" }, el("option", { value: "", text: "Any level" }),
    ...LEVELS.map((l) => el("option", { value: l, text: l })));
  const source = el("input", { type: "search", placeholder: "agent, server…", "aria-label": "Source", list: "log-sources" });
  const sources = el("datalist", { id: "log-sources" });
  const search = el("input", { type: "search", placeholder: "Words in the message", "aria-label": "Search logs" });
  const client = el("select", { "aria-label": "Client" }, el("option", { value: "", text: "Any client" }));
  const names = new Map(); // client id → name, for the lines the feed brings
  const nameOf = (d) => d.client_name || (d.client_id && (names.get(d.client_id) || `client ${d.client_id.slice(0, 8)}`)) || "server";
  const pause = el("button", { type: "button", class: "ghost", "aria-pressed": "false", text: "Pause" });
  const waiting = el("span", { class: "muted", "aria-live": "polite" });
  const tail = el("ol", { class: "tail", "aria-label": "Log tail", tabindex: "0" });

  let paused = false;
  let pausedByScroll = false; // only a pause that scrolling made is lifted by scrolling back down
  let held = []; // lines that arrived while paused
  const known = new Set();

  const filter = () => ({ level: level.value, source: source.value.trim(), q: search.value.trim(), client: client.value });
  const matches = (d, f) => (!f.level || d.level === f.level) && (!f.source || d.source === f.source)
    && (!f.client || d.client_id === f.client) && (!f.q || d.message.toLowerCase().includes(f.q.toLowerCase()));
  const line = (at, d) => {
    if (!known.has(d.source)) { known.add(d.source); sources.append(el("option", { value: d.source })); }
    return el("li", { class: `lvl-${d.level}` }, el("time", { text: datetime(at) }), el("span", { class: "level", text: d.level }),
      el("span", { class: "client", text: nameOf(d) }), el("span", { class: "source", text: d.source }),
      el("span", { class: "message", text: d.message }));
  };
  const atBottom = () => tail.scrollHeight - tail.scrollTop - tail.clientHeight < 24;
  const toBottom = () => { tail.scrollTop = tail.scrollHeight; };
  const trim = () => { while (tail.children.length > KEEP) tail.firstChild.remove(); };
  const setPaused = (p, byScroll = false) => {
    paused = p;
    pausedByScroll = p && byScroll;
    pause.textContent = p ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(p));
    if (!p) {
      tail.append(...held);
      held = [];
      trim();
      toBottom();
    }
    waiting.textContent = p ? "paused" : "";
  };
  pause.onclick = () => setPaused(!paused);
  // Scrolling up to read pauses the tail; coming back to the bottom resumes it.
  // (The tail's own scrolling to the bottom never pauses it: it ends at the bottom.)
  tail.addEventListener("scroll", () => {
    if (!paused && !atBottom()) setPaused(true, true);
    else if (paused && pausedByScroll && atBottom() && held.length === 0) setPaused(false);
  });

  // A load answers the lines as of its query; events that arrive meanwhile wait in `buffer` and follow it, those
  // it already holds skipped (a log line's id is its event's position).
  let buffer = null;
  let newest = 0;
  async function load() {
    const f = filter();
    const mine = (buffer = []);
    const page = await api("GET", "/api/logs" + qs({ per_page: 200, level: f.level, source: f.source, q: f.q, client: f.client }));
    if (buffer !== mine) return; // a newer load took over
    buffer = null;
    held = [];
    newest = page.items.length ? page.items[0].id : 0;
    tail.replaceChildren(...page.items.reverse().map((l) => line(l.recorded_at, l)));
    if (!page.items.length) tail.append(el("li", { class: "empty", text: "No log lines match." }));
    toBottom();
    tail.dataset.loads = String((Number(tail.dataset.loads) || 0) + 1);
    mine.forEach(onEvent);
  }
  let typing = null;
  const reload = () => { clearTimeout(typing); typing = setTimeout(() => load().catch((e) => notice(e.message, "error")), 200); };
  level.onchange = client.onchange = source.oninput = search.oninput = reload;

  const clear = button("Clear…", (b) => busy(b, async () => {
    if (!(await confirmAction("Clear every log line? The events stay in the audit trail.", "Clear"))) return;
    const r = await api("DELETE", "/api/logs");
    notice(`${r.cleared} log lines cleared`);
  }), "ghost danger-text");
  const exporter = (format) => button(`Export ${format.toUpperCase()}`, (b) => busy(b, async () => {
    const f = filter();
    save(await raw("GET", "/api/logs/export" + qs({ format, level: f.level, source: f.source, q: f.q, client: f.client })), `cairn-logs.${format}`);
  }), "ghost");

  root.replaceChildren(
    el("h1", { text: "Logs" }),
    toolbar(field("Level", level), field("Client", client), field("Source", source), field("Search", search), sources,
      el("span", { class: "grow" }), waiting, pause, exporter("json"), exporter("csv"), clear),
    el("section", { class: "panel" }, tail),
  );
  const stop = live.on("event", onEvent);
  try {
    // The clients to filter by, by name (the first 100; lines of others still show their names).
    const clients = await api("GET", "/api/clients" + qs({ per_page: 100, sort: "name" }));
    for (const c of clients.items) {
      names.set(c.id, c.name);
      client.append(el("option", { value: c.id, text: c.name }));
    }
    await load();
  } catch (e) {
    stop();
    throw e;
  }
  return stop;

  function onEvent(e) {
    if (buffer) { buffer.push(e); return; }
    if (e.type === "LogsCleared") {
      held = [];
      tail.replaceChildren(el("li", { class: "empty", text: `The log was cleared (${e.data.cleared} lines).` }));
      return;
    }
    if (e.type !== "LogRecorded" || e.position <= newest || !matches(e.data, filter())) return;
    newest = e.position;
    const li = line(e.recorded_at, e.data);
    if (paused) {
      held.push(li);
      waiting.textContent = `paused · ${held.length} new`;
      return;
    }
    tail.querySelector(".empty")?.remove();
    tail.append(li);
    trim();
    toBottom();
  }
}
