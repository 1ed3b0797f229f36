// Fleet (on a hub, `cairn hub`): one card per site, worst state first (broken, down, lagging, up), with its head,
// lag, chain and figures; and every site's clients, searched by name.

import { api, qs } from "../api.js";
import * as live from "../live.js";
import { bytes, datetime, el } from "../format.js";
import { badge, field, notice, toolbar } from "../ui.js";

export const title = "Fleet";

// Whether this server is a hub (its status says so).
export async function available() {
  try { return (await api("GET", "/api/status")).hub === true; } catch { return false; }
}

const STATE = { up: ["up", "ok"], lagging: ["lagging", "warn"], down: ["down", "bad"], broken: ["broken", "bad"] };
const REFRESH_MS = 2000;

function card(s) {
  const [word, kind] = STATE[s.state] || [s.state, ""];
  const fact = (label, value) => el("div", { class: "fact" }, el("span", { class: "muted", text: label }), el("strong", { text: String(value) }));
  const beat = s.heartbeat_seconds === null || s.heartbeat_seconds === undefined ? "never" : `${Math.round(s.heartbeat_seconds)} s ago`;
  return el("article", { class: `panel site site-${s.state}`, "data-site": s.site, "data-state": s.state, "aria-label": `Site ${s.site}` },
    el("div", { class: "title-row" }, el("h2", { text: s.site }), el("span", { class: "grow" }), badge(word, kind)),
    el("p", { class: "muted", text: `head ${s.head_position}${s.lag ? `, ${s.lag} behind the site` : ""} · last event ${s.last_event_at ? datetime(s.last_event_at) : "none yet"} · heartbeat ${beat}` }),
    s.chain.ok
      ? el("p", {}, badge("chain intact", "ok"))
      : el("p", { role: "alert" }, badge(`broken at position ${s.chain.first_bad}`, "bad"), el("span", { class: "error", text: ` ${s.chain.detail}` })),
    el("div", { class: "facts" },
      fact("Clients", `${s.clients_connected} / ${s.total_clients}`),
      fact("Overdue", s.overdue_clients),
      fact("Files", s.total_files),
      fact("Stored", bytes(s.stored_bytes)),
      fact("Failed transfers", s.failed_transfers)));
}

export async function mount(root) {
  const summary = el("p", { class: "muted", "aria-live": "polite" });
  const cards = el("div", { class: "sites", role: "list", "aria-label": "Sites" });
  const q = el("input", { type: "search", placeholder: "a client's name", "aria-label": "Client name" });
  const site = el("select", { "aria-label": "Site" }, el("option", { value: "", text: "Every site" }));
  const rows = el("tbody");
  const search = el("form", { class: "toolbar" }, field("Client", q), field("Site", site), el("button", { type: "submit", text: "Search" }));

  async function refresh() {
    const sites = await api("GET", "/api/fleet/sites");
    const count = (state) => sites.filter((s) => s.state === state).length;
    summary.textContent = sites.length
      ? `${sites.length} sites: ${count("up")} up, ${count("lagging")} lagging, ${count("down")} down, ${count("broken")} broken`
      : "No site has published yet: start each site with cairn serve --publish nats://… --site NAME.";
    cards.replaceChildren(...sites.map(card));
    const chosen = site.value;
    site.replaceChildren(el("option", { value: "", text: "Every site" }), ...sites.map((s) => el("option", { value: s.site, text: s.site })));
    site.value = chosen;
    root.dataset.sites = String(sites.length);
  }
  async function clients() {
    const list = await api("GET", "/api/fleet/clients" + qs({ site: site.value, q: q.value.trim() }));
    rows.replaceChildren(...list.map((c) => el("tr", {},
      el("td", { text: c.site }), el("td", { text: c.name }), el("td", {}, badge(c.status, c.status === "online" ? "ok" : "")),
      el("td", { text: c.last_seen ? datetime(c.last_seen) : "–" }), el("td", { text: c.last_backup_at ? datetime(c.last_backup_at) : "never" }),
      el("td", {}, c.backup_overdue_since ? badge("overdue", "warn") : ""))));
    root.dataset.clients = String(list.length);
  }
  search.onsubmit = (ev) => { ev.preventDefault(); clients().catch((e) => notice(e.message, "error")); };

  root.replaceChildren(
    el("div", { class: "title-row" }, el("h1", { text: "Fleet" })),
    summary, cards,
    el("section", { class: "panel" }, el("h2", { text: "Clients across the fleet" }), toolbar(search),
      el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Fleet clients, scrollable" },
        el("table", { "aria-label": "Fleet clients" },
          el("thead", {}, el("tr", {}, ...["Site", "Client", "Status", "Last seen", "Last backup", ""].map((h) => el("th", { text: h })))), rows))));

  await refresh();
  await clients();
  // The hub's own events (a site joined, a site broke) come live; the figures are read again every two seconds.
  const timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
  const stop = live.on("event", (e) => { if (e.type.startsWith("FleetSite")) refresh().catch(() => {}); });
  return () => { clearInterval(timer); stop(); };
}
