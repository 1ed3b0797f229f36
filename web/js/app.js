// The dashboard: sign-in, the views by address (#/overview …), and the live indicator.

import { api, ApiError, setToken, token } from "./api.js";
import * as live from "./live.js";
import * as overview from "./views/overview.js";

// Only the views that exist are in the navigation.
const VIEWS = { overview };

let unmount = null;

// The URL printed by `cairn serve` carries the token in its fragment; keep it for the session, never in the URL.
function takeTokenFromUrl() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (!m) return;
  setToken(decodeURIComponent(m[1]));
  history.replaceState(null, "", `${location.pathname}#/overview`);
}

function renderNav(current) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(...Object.entries(VIEWS).map(([name, view]) => {
    const a = document.createElement("a");
    a.href = `#/${name}`;
    a.textContent = view.title;
    if (name === current) a.setAttribute("aria-current", "page");
    return a;
  }));
}

async function route() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || "overview";
  const view = VIEWS[name] || overview;
  renderNav(VIEWS[name] ? name : "overview");
  if (unmount) unmount();
  unmount = null;
  const root = document.getElementById("view");
  try {
    unmount = await view.mount(root);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
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

async function start() {
  takeTokenFromUrl();
  if (!token()) await signIn();
  const indicator = document.getElementById("live");
  live.on("state", (s) => {
    indicator.textContent = s;
    indicator.className = `live ${s === "live" ? "live-on" : s}`;
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
}

start();
