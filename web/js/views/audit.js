// Audit: the event browser, one event in full (proven in the signed checkpoint, in the browser), an entity's
// history, the chain's status, the checkpoint held against the one this browser saw last, and the state of a
// client or file as of a chosen position.

import { api, qs } from "../api.js";
import * as proofs from "../proofs.js";
import * as live from "../live.js";
import { datetime, describe, el } from "../format.js";
import { badge, busy, button, field, notice, toolbar } from "../ui.js";

export const title = "Audit";

const TYPES = ["ClientRegistered", "ClientUpdated", "ClientConnected", "ClientDisconnected", "ClientTokenRotated", "ClientBackupOverdue", "ClientDeleted",
  "FileStored", "FileVerified", "FileDownloaded", "FileDeleted", "TransferStarted", "TransferCompleted", "TransferFailed",
  "LogRecorded", "LogsCleared", "ServerStarted", "ServerStopped", "DatabaseBackedUp", "DatabaseOptimized",
  "ChainBroken", "DiskNearlyFull", "AlertTargetAdded", "AlertTargetRemoved", "AlertRuleAdded", "AlertRuleRemoved",
  "AlertTestRequested", "AlertDelivered", "AlertDeliveryFailed", "ArchiveDownloaded", "BlobsPurged", "DatabaseBackupVerified", "DatabaseBackupRemoved",
  "FleetSiteJoined", "FleetSiteBroken"];
const PAGE = 100;

export async function mount(root, position) {
  const chain = el("div", { role: "region", "aria-label": "Chain status" }, el("p", { class: "muted", text: "Verifying the chain…" }));
  const seal = el("div", { role: "region", "aria-label": "Checkpoint" }, el("p", { class: "muted", text: "Checking the signed checkpoint…" }));
  const stream = el("input", { type: "search", placeholder: "client-…, file-…, log, server", "aria-label": "Stream" });
  const type = el("select", { "aria-label": "Type" }, el("option", { value: "", text: "Any type" }), ...TYPES.map((t) => el("option", { value: t, text: t })));
  const actor = el("input", { type: "search", placeholder: "admin:admin, client:…, system", "aria-label": "Actor" });
  const from = el("input", { type: "datetime-local", "aria-label": "From" });
  const to = el("input", { type: "datetime-local", "aria-label": "To" });
  const rows = el("tbody");
  const status = el("span", { class: "muted" });
  const more = el("button", { type: "button", class: "ghost", text: "Load more" });
  const detail = el("section", { class: "panel detail", "aria-label": "Event" }, el("p", { class: "muted", text: "Choose an event to see it in full." }));

  let cursor = 0;      // the last position listed
  let caughtUp = false; // the list reached the head: live events that match are appended
  let shown = 0;

  const filter = () => ({
    stream: stream.value.trim(), type: type.value, actor: actor.value.trim(),
    from: from.value ? new Date(from.value).toISOString() : "", to: to.value ? new Date(to.value).toISOString() : "",
  });
  // Clients' names by id, for the stream and actor columns (learnt from the clients list and from the events).
  const names = new Map();
  const learn = (e) => {
    const id = e.stream.startsWith("client-") ? e.stream.slice(7) : e.data?.client_id;
    const name = e.data?.name || e.data?.client_name;
    if (id && name) names.set(id, name);
  };
  const clientOf = (e) => (e.stream.startsWith("client-") ? e.stream.slice(7) : e.data?.client_id);
  const streamLabel = (s) => (s.startsWith("client-") && names.has(s.slice(7)) ? `client ${names.get(s.slice(7))}` : s);
  const actorLabel = (a = "") => (a.startsWith("client:") && names.has(a.slice(7)) ? `client ${names.get(a.slice(7))}` : a);
  const row = (e) => {
    learn(e);
    const summary = describe(e, names.get(clientOf(e)));
    const actor = e.metadata?.actor || "";
    const tr = el("tr", { class: "clickable", "data-position": String(e.position) },
      el("td", { text: String(e.position) }), el("td", { text: datetime(e.recorded_at) }), el("td", { title: e.type }, el("code", { text: e.type })),
      el("td", {}, el("a", { href: "#", class: "stream", title: `${e.stream} (show only this stream)`, text: streamLabel(e.stream) })),
      el("td", { text: actorLabel(actor), title: actor }), el("td", { text: summary, title: summary }));
    tr.onclick = (ev) => {
      ev.preventDefault();
      if (ev.target.classList.contains("stream")) { stream.value = e.stream; apply(); return; }
      history.replaceState(null, "", `#/audit/${e.position}`);
      showEvent(e);
    };
    return tr;
  };

  // Events that arrive while a page loads wait in `buffer`; once the list reaches the head they follow it, those
  // the page already holds skipped by position.
  let buffer = null;
  let generation = 0; // bumped by each new listing, so that a slower, older one is dropped
  async function page(after) {
    const f = filter();
    const gen = generation;
    const mine = (buffer = []);
    caughtUp = false;
    let data;
    try {
      data = await api("GET", "/api/events" + qs({ ...f, after, limit: PAGE }));
    } finally {
      if (buffer === mine) buffer = null;
    }
    if (gen !== generation) return; // a new listing (other filters) began meanwhile
    const fresh = data.events.filter((e) => e.position > cursor);
    rows.append(...fresh.map(row));
    shown += fresh.length;
    if (fresh.length) cursor = fresh[fresh.length - 1].position;
    caughtUp = data.next_after === null || data.next_after === undefined;
    more.hidden = caughtUp;
    status.textContent = `${shown} of ${data.total} events`;
    root.dataset.total = String(data.total);
    if (caughtUp) mine.forEach(onEvent);
  }
  async function apply(after = 0) {
    generation += 1;
    rows.replaceChildren();
    shown = 0;
    cursor = after;
    await page(after).catch((e) => notice(e.message, "error"));
  }
  more.onclick = () => busy(more, () => page(cursor));

  async function verify() {
    chain.replaceChildren(el("p", { class: "muted", text: "Verifying the chain…" }));
    const v = await api("GET", "/api/audit/verify");
    chain.replaceChildren(
      el("p", {}, v.ok ? badge("chain intact", "ok") : badge(`broken at position ${v.first_bad.position}`, "bad"),
        v.ok ? "" : el("span", { class: "error", text: ` ${v.first_bad.reason}` }),
        el("span", { class: "muted", text: ` ${v.checked} events checked, head ${v.head}` })),
      el("p", { class: "hash", title: "The head's hash: note it to prove later that nothing before it changed" }, "head hash ", el("code", { text: v.head_hash || "–" })));
    root.dataset.chain = v.ok ? "ok" : "broken";
  }

  // The signed checkpoint against the one this browser kept from its last visit.
  async function watchCheckpoint() {
    if (!proofs.available()) {
      seal.replaceChildren(el("p", { class: "muted", text: "This browser checks proofs only on a secure page (HTTPS, or localhost)." }));
      return;
    }
    const w = await proofs.watch(api);
    const c = w.checkpoint;
    const when = w.previous ? datetime(w.previous.seen) : "";
    const signed = el("span", { class: "muted", text: ` Signed by ${c.origin}: ${c.size} events, root ${c.rootText}` });
    const says = {
      first: [badge("checkpoint kept", "ok"), ` First look from this browser: the checkpoint of ${c.size} events is kept here, and each later visit checks that the log still extends it.`],
      same: [badge("not rewritten", "ok"), ` The log has not been rewritten since you last looked on ${when} (${c.size} events then and now).`],
      extended: [badge("not rewritten", "ok"), ` The log has not been rewritten since you last looked on ${when}: its ${w.previous?.size} events then are the first of the ${c.size} now.`],
    }[w.state];
    if (says) {
      seal.replaceChildren(el("p", {}, ...says), el("p", { class: "hash" }, signed));
    } else {
      const why = w.state === "key-changed"
        ? `The log's key changed since you last looked on ${when}: this checkpoint is not signed by the key you saw then, so nothing proves the log was kept.`
        : `The log was rewritten: the checkpoint of ${w.previous.size} events you saw on ${when} is not a prefix of today's ${c.size} events.`;
      seal.replaceChildren(el("div", { class: "alarm", role: "alert" }, badge(w.state === "key-changed" ? "KEY CHANGED" : "REWRITTEN", "bad"), el("strong", { text: ` Warning: ${why}` })), el("p", { class: "hash" }, signed));
    }
    root.dataset.checkpoint = w.state;
  }

  // Proves one event in the latest checkpoint, in the browser: the signature, then the path from its leaf up.
  async function prove(e, out) {
    if (!proofs.available()) {
      out.replaceChildren(el("p", { class: "error", text: "This browser checks proofs only on a secure page (HTTPS, or localhost)." }));
      return;
    }
    const short = (bytes) => proofs.hex(bytes).slice(0, 16) + "…";
    try {
      // An event that came over the live feed carries no hash: the log's copy does.
      const hash = e.hash || (await api("GET", `/api/events/${e.position}`)).hash;
      const p = await proofs.prove(api, e.position, hash);
      out.replaceChildren(
        el("p", {}, p.ok ? badge("proven", "ok") : badge("proof failed", "bad"),
          el("span", { text: p.ok
            ? ` Event #${e.position} is leaf ${e.position - 1} of the tree of ${p.checkpoint.size} events whose root the checkpoint signed by ${p.checkpoint.origin} states; checked here, in this browser.`
            : ` The path from event #${e.position} leads to ${short(p.root)}, not to the checkpoint's root ${short(p.checkpoint.root)}.` })),
        el("ol", { class: "path", "aria-label": "Audit path" },
          el("li", {}, el("span", { class: "muted", text: "leaf SHA-256(0x00 ‖ event hash) " }), el("code", { text: short(p.leaf) })),
          ...p.steps.map((s) => el("li", {}, el("span", { class: "muted", text: `with the sibling on the ${s.side} ` }), el("code", { text: short(s.sibling) }), " → ", el("code", { text: short(s.hash) }))),
          el("li", {}, el("span", { class: "muted", text: "the checkpoint's root " }), el("code", { text: short(p.checkpoint.root) }))));
      out.dataset.proof = p.ok ? "ok" : "failed";
    } catch (err) {
      out.replaceChildren(el("p", {}, badge("proof failed", "bad"), el("span", { class: "error", text: ` ${err.message}` })));
      out.dataset.proof = "failed";
    }
  }

  async function showEvent(e) {
    const proof = el("div", { class: "proof", role: "region", "aria-label": "Proof", "aria-live": "polite" });
    detail.replaceChildren(
      el("div", { class: "title-row" }, el("h2", { text: `#${e.position} ${e.type}` }), el("span", { class: "grow" }),
        button("Prove", (b) => busy(b, () => prove(e, proof)), "ghost small"),
        button("Entity history", (b) => busy(b, () => entity(e.stream)), "ghost small"),
        ...(/^(client|file)-/.test(e.stream) ? [button("State as of this event", (b) => busy(b, () => asOf(e.stream, e.position)), "ghost small")] : []),
        ...(clientOf(e) ? [button("Restore as of this event", () => { location.hash = `#/clients/${clientOf(e)}?restore=${e.position}`; }, "ghost small")] : [])),
      proof,
      el("pre", { class: "json", tabindex: "0", text: JSON.stringify(e, null, 2) }));
  }

  async function entity(name) {
    const data = await api("GET", "/api/events" + qs({ stream: name, limit: 1000 }));
    detail.replaceChildren(el("h2", { text: `History of ${name}` }),
      el("p", { class: "muted", text: `${data.total} events${data.total > data.events.length ? `, the first ${data.events.length} shown` : ""}` }),
      el("ol", { class: "history" }, ...data.events.map((e) => {
        const a = el("a", { href: `#/audit/${e.position}`, text: `#${e.position}` });
        a.onclick = (ev) => { ev.preventDefault(); history.replaceState(null, "", a.getAttribute("href")); showEvent(e); };
        return el("li", {}, a, " ", el("code", { text: e.type }), " ", el("span", { class: "muted", text: `${datetime(e.recorded_at)} · ${e.metadata?.actor || ""}` }), el("div", { text: describe(e, e.data?.name || e.data?.client_name) }));
      })));
  }

  async function asOf(name, at) {
    const [kind, id] = [name.slice(0, name.indexOf("-")), name.slice(name.indexOf("-") + 1)];
    // A client may be asked for by name (the one it had then); its answer says its id.
    const path = kind === "client" ? "/api/clients/" : "/api/files/";
    const then = await api("GET", `${path}${encodeURIComponent(id)}?at=${encodeURIComponent(at)}`);
    const now = await api("GET", path + then.id).catch((e) => ({ note: `now: ${e.message}` }));
    detail.replaceChildren(el("h2", { text: `${kind} ${then.name || then.filename || id}` }),
      el("div", { class: "grid2" },
        el("div", {}, el("h3", { text: `As of position ${at}` }), el("pre", { class: "json", tabindex: "0", text: JSON.stringify(then, null, 2) })),
        el("div", {}, el("h3", { text: "Now" }), el("pre", { class: "json", tabindex: "0", text: JSON.stringify(now, null, 2) }))));
  }

  // The state of any client or file at any position, asked for directly.
  const kind = el("select", { "aria-label": "Kind" }, el("option", { value: "client", text: "client" }), el("option", { value: "file", text: "file" }));
  const entityId = el("input", { placeholder: "a client's name, or an id", "aria-label": "Name or id", size: "38" });
  const at = el("input", { type: "number", min: "1", placeholder: "position", "aria-label": "Position" });
  const asOfForm = el("form", { class: "toolbar" }, field("State of a", kind), field("Name or id", entityId), field("As of position", at), el("button", { type: "submit", text: "Show" }));
  asOfForm.onsubmit = (ev) => {
    ev.preventDefault();
    asOf(`${kind.value}-${entityId.value.trim()}`, at.value).catch((e) => notice(e.message, "error"));
  };

  const applyButton = el("button", { type: "submit", text: "Apply" });
  const filters = el("form", { class: "toolbar" }, field("Stream", stream), field("Type", type), field("Actor", actor), field("From", from), field("To", to), applyButton,
    button("Latest", (b) => busy(b, async () => {
      const s = await api("GET", "/api/status");
      await apply(Math.max(0, s.head_position - PAGE));
    }), "ghost"));
  filters.onsubmit = (ev) => { ev.preventDefault(); busy(applyButton, () => apply()); };

  root.replaceChildren(
    el("div", { class: "title-row" }, el("h1", { text: "Audit" }), el("span", { class: "grow" }), button("Verify the chain", (b) => busy(b, verify), "ghost")),
    el("section", { class: "panel" }, el("h2", { text: "Chain" }), chain, seal),
    filters,
    el("div", { class: "audit" },
      el("section", { class: "panel" },
        el("div", { class: "scroll tall", tabindex: "0", role: "region", "aria-label": "Events, scrollable" }, el("table", { "aria-label": "Events" },
          el("colgroup", {}, ...["pos", "at", "type", "stream", "actor", "summary"].map((c) => el("col", { class: c }))),
          el("thead", {}, el("tr", {}, ...["Position", "Recorded", "Type", "Stream", "Actor", "Summary"].map((h) => el("th", { text: h })))), rows)),
        el("div", { class: "pager" }, status, more)),
      el("div", {}, detail, el("section", { class: "panel" }, asOfForm))),
  );

  const stop = live.on("event", onEvent);
  try {
    const fleet = await api("GET", "/api/clients?per_page=500");
    for (const c of fleet.items) names.set(c.id, c.name);
  } catch { /* names then come from the events alone */ }
  verify().catch((e) => chain.replaceChildren(el("p", { class: "error", text: e.message })));
  watchCheckpoint().catch((e) => { seal.replaceChildren(el("p", { class: "error", text: `The checkpoint: ${e.message}` })); root.dataset.checkpoint = "error"; });
  await apply();
  if (position) {
    await api("GET", `/api/events/${position}`).then(showEvent).catch((e) => notice(e.message, "error"));
  }
  return stop;

  function onEvent(e) {
    if (buffer) { buffer.push(e); return; }
    if (!caughtUp || e.position <= cursor) return;
    const f = filter();
    if ((f.stream && e.stream !== f.stream) || (f.type && e.type !== f.type) || (f.actor && e.metadata?.actor !== f.actor) || f.to) return;
    rows.append(row(e));
    shown += 1;
    cursor = e.position;
    status.textContent = `${shown} events`;
  }
}
