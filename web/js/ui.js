// Pieces the views share: a table over one of the API's paginated lists, dialogs, notices, badges.

import { el } from "./format.js";

// A table over a paginated list: headers that sort, pages, and a reload that keeps its place and coalesces
// the calls that arrive while one is under way (live events ask for many).
//   columns: [{ key, label, sort: true|false, render(row) → Node|string }]
//   load({ page, per_page, sort }) → { items, page, pages, total }
export function pagedTable({ label, columns, load, perPage = 50, sort = null, empty = "Nothing here yet.", onRow = null }) {
  let page = 1;
  let order = sort;
  let running = null;
  let again = false;
  const head = el("tr");
  const body = el("tbody");
  const info = el("span", { class: "muted" });
  const prev = el("button", { type: "button", class: "ghost", text: "‹ Previous" });
  const next = el("button", { type: "button", class: "ghost", text: "Next ›" });
  const root = el("div", { class: "table-wrap" },
    // Focusable, so that a keyboard can scroll it (axe: scrollable-region-focusable).
    el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": `${label}, scrollable` }, el("table", { "aria-label": label }, el("thead", {}, head), body)),
    el("div", { class: "pager" }, prev, info, next));
  prev.onclick = () => { page -= 1; reload(); };
  next.onclick = () => { page += 1; reload(); };
  // While the pointer is over the rows, live changes wait (rows would move under it, next to Delete): a button
  // says how many, and shows them; leaving the table shows them too.
  let hovering = false;
  let held = 0;
  const pending = el("button", { type: "button", class: "held small", hidden: "" });
  pending.onclick = () => { held = 0; pending.hidden = true; reload(); };
  root.querySelector(".pager").insertBefore(pending, info);
  body.addEventListener("pointerenter", () => { hovering = true; });
  body.addEventListener("pointerleave", () => {
    hovering = false;
    if (held) { held = 0; pending.hidden = true; reload(); }
  });

  function header() {
    head.replaceChildren(...columns.map((c) => {
      if (!c.sort) return c.label ? el("th", { text: c.label }) : el("th", {}, el("span", { class: "sr-only", text: "Actions" }));
      const dir = order === c.key ? "ascending" : order === `-${c.key}` ? "descending" : "none";
      const b = el("button", { type: "button", class: "sort", text: c.label + (dir === "ascending" ? " ▲" : dir === "descending" ? " ▼" : "") });
      b.onclick = () => {
        order = order === c.key ? `-${c.key}` : c.key;
        page = 1;
        reload();
      };
      return el("th", { "aria-sort": dir }, b);
    }));
  }

  async function fetchPage() {
    const data = await load({ page, per_page: perPage, sort: order });
    if (data.pages && page > data.pages) { // the last page emptied under us: show the new last one
      page = data.pages;
      return fetchPage();
    }
    header();
    body.replaceChildren(...(data.items.length ? data.items.map((row) => {
      const tr = el("tr", {}, ...columns.map((c) => el("td", { "data-col": c.key }, c.render ? c.render(row) : String(row[c.key] ?? ""))));
      if (onRow) {
        tr.classList.add("clickable");
        tr.onclick = (ev) => { if (!ev.target.closest("button, a, input")) onRow(row); };
      }
      return tr;
    }) : [el("tr", {}, el("td", { colspan: String(columns.length), class: "empty", text: empty }))]));
    info.textContent = data.total ? `page ${data.page} of ${data.pages} · ${data.total} in all` : "";
    prev.disabled = page <= 1;
    next.disabled = page >= (data.pages || 1);
    root.dataset.loaded = String((Number(root.dataset.loaded) || 0) + 1);
  }

  // Runs a load now, or once more after the one under way.
  function reload() {
    if (running) { again = true; return running; }
    running = fetchPage()
      .catch((e) => {
        body.replaceChildren(el("tr", {}, el("td", { colspan: String(columns.length), class: "error", text: `Could not load: ${e.message}` })));
      })
      .finally(() => {
        running = null;
        if (again) { again = false; reload(); }
      });
    return running;
  }

  // A reload asked for by a live change: held while the pointer is over the rows.
  function changed(count = 1) {
    if (!hovering) return reload();
    held += count;
    pending.hidden = false;
    pending.textContent = `${held} new · show`;
    return Promise.resolve();
  }

  return {
    root,
    reload,
    changed,
    first() { page = 1; held = 0; pending.hidden = true; return reload(); },
  };
}

// Calls fn at most once per `ms`, and once more after the last call.
export function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  return () => {
    if (timer) { pending = true; return; }
    fn();
    timer = setTimeout(function tick() {
      if (pending) { pending = false; fn(); timer = setTimeout(tick, ms); } else timer = null;
    }, ms);
  };
}

// A modal with a message and two buttons; resolves true when the action is confirmed.
export function confirmAction(message, action = "Delete") {
  return new Promise((resolve) => {
    const ok = el("button", { type: "button", class: "danger", "data-confirm": "yes", text: action });
    const cancel = el("button", { type: "button", class: "ghost", text: "Cancel" });
    const d = el("dialog", { class: "confirm" }, el("p", { text: message }), el("div", { class: "actions" }, cancel, ok));
    const done = (answer) => { d.close(); d.remove(); resolve(answer); };
    ok.onclick = () => done(true);
    cancel.onclick = () => done(false);
    d.oncancel = () => done(false);
    document.body.append(d);
    d.showModal();
  });
}

// A modal showing a secret once (a client's token), with a copy button.
export function showSecret(title, text, secret) {
  const value = el("input", { class: "secret", readonly: "", value: secret, "aria-label": title });
  const copy = el("button", { type: "button", class: "ghost", text: "Copy" });
  const close = el("button", { type: "button", text: "Done" });
  const d = el("dialog", {}, el("h2", { text: title }), el("p", { text }), value, el("div", { class: "actions" }, copy, close));
  copy.onclick = async () => {
    value.select();
    try { await navigator.clipboard.writeText(secret); copy.textContent = "Copied"; } catch { copy.textContent = "Select and copy"; }
  };
  close.onclick = () => { d.close(); d.remove(); };
  document.body.append(d);
  d.showModal();
}

// A short notice at the bottom of the page.
export function notice(message, kind = "ok") {
  let box = document.getElementById("notices");
  if (!box) {
    box = el("div", { id: "notices", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const n = el("div", { class: `notice ${kind}`, text: message });
  box.append(n);
  setTimeout(() => n.remove(), kind === "error" ? 8000 : 4000);
}

export function badge(text, kind) {
  return el("span", { class: `badge ${kind || String(text).toLowerCase()}`, text });
}

// Runs an action from a button, disabling it meanwhile; errors become notices.
export async function busy(button, action) {
  button.disabled = true;
  try {
    return await action();
  } catch (e) {
    notice(e.message, "error");
    return undefined;
  } finally {
    button.disabled = false;
  }
}

// Saves a response body as a file (downloads need the token, so they go through fetch, not a link).
export async function save(response, fallbackName) {
  const blob = await response.blob();
  const disposition = response.headers.get("content-disposition") || "";
  // RFC 6266: the UTF-8 name (filename*) when there is one, else the plain one, else ours.
  const utf8 = disposition.match(/filename\*=UTF-8''([^;]+)/i);
  const plain = disposition.match(/filename="([^"]*)"/i);
  const name = utf8 ? decodeURIComponent(utf8[1]) : plain ? plain[1] : fallbackName;
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

export function toolbar(...children) {
  return el("div", { class: "toolbar" }, ...children);
}

export function field(label, control) {
  return el("label", { class: "field" }, el("span", { text: label }), control);
}

export function button(text, onclick, kind = "") {
  const b = el("button", { type: "button", class: kind, text });
  b.onclick = () => onclick(b);
  return b;
}

// Key–value pairs as a description list.
export function facts(pairs) {
  return el("dl", { class: "facts" }, ...pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : String(v ?? "–"))]));
}
