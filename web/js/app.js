// The dashboard: sign-in, the views by address (#/overview …), and the live indicator.

import { api, ApiError, setToken, token } from "./api.js";
import * as live from "./live.js";
import * as alerts from "./views/alerts.js";
import * as analytics from "./views/analytics.js";
import * as audit from "./views/audit.js";
import * as clients from "./views/clients.js";
import * as database from "./views/database.js";
import * as files from "./views/files.js";
import * as fleet from "./views/fleet.js";
import * as logs from "./views/logs.js";
import * as overview from "./views/overview.js";

// Each view has its own address: #/name, #/name/id (one client, one event, one table), #/name?filters.
const VIEWS = { overview, clients, files, logs, analytics, alerts, database, audit, fleet };
// Views a server may not have: Fleet only on a hub. Shown once the server says it has them.
const HIDDEN = new Set(["fleet"]);

let unmount = null;
let mounted = null; // the route being mounted, so that a slow one does not outlive a newer one

// The URL printed by `cairn serve` carries the token in its fragment; keep it for the session, never in the URL.
function takeTokenFromUrl() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (!m) return;
  setToken(decodeURIComponent(m[1]));
  history.replaceState(null, "", `${location.pathname}#/overview`);
}

function renderNav(current) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(...Object.entries(VIEWS).filter(([name]) => !HIDDEN.has(name) || name === current).map(([name, view]) => {
    const a = document.createElement("a");
    a.href = `#/${name}`;
    a.textContent = view.title;
    if (name === current) a.setAttribute("aria-current", "page");
    return a;
  }));
}

async function route() {
  const [, name = "overview", id = "", query = ""] = location.hash.match(/^#\/(\w+)(?:\/([^?]*))?(?:\?(.*))?/) || [];
  const view = VIEWS[name] || overview;
  renderNav(VIEWS[name] ? name : "overview");
  if (unmount) unmount();
  unmount = null;
  const root = document.getElementById("view");
  root.replaceChildren();
  for (const key of Object.keys(root.dataset)) delete root.dataset[key];
  const mounting = (mounted = {});
  try {
    const stop = await view.mount(root, decodeURIComponent(id), new URLSearchParams(query));
    // Another route began while this one loaded: stop this one at once.
    if (mounted === mounting) unmount = stop;
    else if (stop) stop();
  } catch (e) {
    if (mounted === mounting && !(e instanceof ApiError && e.status === 401)) {
      root.replaceChildren(Object.assign(document.createElement("p"), { className: "error", textContent: `Could not load: ${e.message}` }));
    }
  }
}

async function signIn() {
  const dialog = document.getElementById("signin");
  const input = document.getElementById("signin-token");
  const error = document.getElementById("signin-error");
  return new Promise((resolve) => {
    document.getElementById("signin-form").onsubmit = async (ev) => {
      ev.preventDefault();
      setToken(input.value.trim());
      try {
        await api("GET", "/api/status");
        dialog.close();
        resolve();
      } catch (e) {
        setToken(null);
        error.hidden = false;
        error.textContent = e.code === "UNAUTHORIZED" ? "That token is not valid." : `Could not sign in: ${e.message}`;
      }
    };
    if (!dialog.open) dialog.showModal();
  });
}

// The theme: index.html set it before the first paint; the button switches it and the choice is kept.
function themeButton() {
  const button = document.getElementById("theme");
  const show = () => {
    const dark = document.documentElement.dataset.theme === "dark";
    button.textContent = dark ? "light" : "dark";
    button.setAttribute("aria-label", dark ? "Switch to the light theme" : "Switch to the dark theme");
  };
  button.onclick = () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("cairn-theme", next);
    show();
  };
  // Following the system's theme until one is chosen here.
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", (m) => {
    if (!localStorage.getItem("cairn-theme")) { document.documentElement.dataset.theme = m.matches ? "dark" : "light"; show(); }
  });
  show();
}

async function start() {
  themeButton();
  takeTokenFromUrl();
  if (!token()) await signIn();
  const indicator = document.getElementById("live");
  // Once the page has been live, losing the feed says so over every view: the figures it shows stop moving.
  const stale = document.getElementById("stale");
  let wasLive = false;
  live.on("state", (s) => {
    indicator.textContent = s;
    indicator.className = `live ${s === "live" ? "live-on" : s}`;
    if (s === "live") wasLive = true;
    stale.hidden = s === "live" || !wasLive;
    stale.textContent = s === "offline"
      ? "The server cannot be reached: what you see may be out of date. Still trying…"
      : "The live feed was cut: what you see may be out of date. Reconnecting…";
  });
  window.addEventListener("cairn:signed-out", async () => {
    setToken(null);
    live.disconnect();
    await signIn();
    live.connect();
    route();
  });
  window.addEventListener("hashchange", route);
  live.connect();
  route();
  if (await fleet.available()) {
    HIDDEN.delete("fleet");
    renderNav((location.hash.match(/^#\/(\w+)/) || [])[1] || "overview");
  }
}

start();
