// One live connection for the whole page: subscribes once, resumes after its last position when it comes back,
// and tells the page whether it is live, reconnecting or offline.

import { token } from "./api.js";

const listeners = { event: new Set(), stats: new Set(), progress: new Set(), presence: new Set(), history: new Set(), state: new Set() };
let telemetry = [];     // the server's telemetry history, sent on subscribe, then each stats sample added
let socket = null;
let last = null;        // the last position received; null until the first subscription is acknowledged
let attempts = 0;
let state = "offline";

export function on(kind, fn) {
  listeners[kind].add(fn);
  if (kind === "state") fn(state);
  return () => listeners[kind].delete(fn);
}

function emit(kind, value) {
  for (const fn of listeners[kind]) {
    try { fn(value); } catch (e) { console.error("a live listener failed", e); }
  }
}

function setState(next) {
  state = next;
  emit("state", next);
}

// The telemetry samples known so far, oldest first (the server's history, then the live samples).
export function telemetryHistory() {
  return telemetry;
}

export function lastPosition() {
  return last;
}

export function connect() {
  if (socket || !token()) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/live?token=${encodeURIComponent(token())}`);
  socket.onopen = () => {
    attempts = 0;
    socket.send(JSON.stringify(last === null ? { op: "subscribe" } : { op: "subscribe", from: last }));
  };
  socket.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    switch (msg.kind) {
      case "subscribed":
        if (last === null) last = msg.from;
        setState("live");
        break;
      case "event":
        last = msg.position;
        emit("event", msg);
        break;
      case "history":
        telemetry = msg.telemetry || [];
        emit("history", telemetry);
        break;
      case "stats":
        if (msg.telemetry) {
          telemetry.push({ at: new Date().toISOString(), cpu_percent: msg.telemetry.cpu_percent, memory_percent: msg.telemetry.memory_percent });
          if (telemetry.length > 300) telemetry.shift();
        }
        emit("stats", msg);
        break;
      case "progress":
        emit("progress", msg);
        break;
      case "presence":
        emit("presence", msg);
        break;
      case "error":
        console.error("the live feed refused a message", msg);
        break;
    }
  };
  socket.onclose = () => {
    socket = null;
    if (!token()) return setState("offline");
    attempts += 1;
    setState(attempts > 5 ? "offline" : "reconnecting");
    setTimeout(connect, Math.min(10000, 250 * 2 ** attempts));
  };
}

export function disconnect() {
  if (socket) socket.close();
}
