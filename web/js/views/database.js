// Database: the tables and their sizes, health checks, a table browser, a read-only SQL console, backup, optimize.

import { api, qs } from "../api.js";
import { bytes, datetime, el } from "../format.js";
import { badge, busy, button, facts, notice, pagedTable } from "../ui.js";

export const title = "Database";

export async function mount(root, table) {
  const info = el("div");
  const health = el("div", { role: "region", "aria-label": "Health checks" }, el("p", { class: "muted", text: "Checking…" }));
  const browser = el("section", { class: "panel", "aria-label": "Table browser" });
  const sql = el("textarea", { class: "sql", rows: "4", spellcheck: "false", "aria-label": "SQL" });
  sql.value = "SELECT status, count(*) AS clients, sum(total_size) AS bytes FROM clients GROUP BY status";
  const result = el("div", { class: "sql-result" });
  const snapshots = el("tbody");

  root.replaceChildren(
    el("div", { class: "title-row" }, el("h1", { text: "Database" }), el("span", { class: "grow" }),
      button("Back up now", (b) => busy(b, async () => {
        const r = await api("POST", "/api/db/backup");
        notice(`Backup written: ${r.path} (${bytes(r.bytes)}: the database and ${r.snapshot.blobs} blobs)`);
        await Promise.all([showInfo(), showBackups()]);
      })),
      button("Optimize", (b) => busy(b, async () => {
        await api("POST", "/api/db/optimize");
        notice("ANALYZE and PRAGMA optimize done");
        await showInfo();
      }), "ghost")),
    info,
    el("section", { class: "panel" }, el("h2", { text: "Backups" }),
      el("p", { class: "muted", text: "Each is a data directory of its own: the database and every blob it refers to. cairn serve --data runs on one as it is." }),
      el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Backups, scrollable" }, el("table", { "aria-label": "Backups" },
        el("thead", {}, el("tr", {}, ...["Taken", "Head", "Files", "Blobs", "Size", "Checked", "Actions"].map((h) => el("th", { text: h })))), snapshots))),
    el("div", { class: "grid2" },
      el("section", { class: "panel" }, el("div", { class: "title-row" }, el("h2", { text: "Health" }), el("span", { class: "grow" }),
        button("Check again", (b) => busy(b, checkHealth), "ghost small")), health),
      el("section", { class: "panel" }, el("h2", { text: "SQL console (read-only)" }), sql,
        el("div", { class: "actions" }, el("span", { class: "muted grow", text: "Ctrl+Enter runs. Writes are refused." }), button("Run", (b) => busy(b, run))),
        result)),
    browser,
  );

  async function showInfo() {
    const db = await api("GET", "/api/db");
    info.replaceChildren(el("div", { class: "grid2" },
      el("section", { class: "panel" }, el("h2", { text: "File" }), facts([
        ["Path", db.path], ["Size", bytes(db.page_size * db.page_count)], ["On disk", bytes(db.size_bytes)], ["WAL", bytes(db.wal_bytes)], ["Free pages", db.freelist_count],
        ["SQLite", db.sqlite_version], ["Schema version", db.schema_version], ["Journal", db.journal_mode],
        ["Last backup", db.last_backup ? `${datetime(db.last_backup.recorded_at)} → ${db.last_backup.data.destination}` : "never"],
      ])),
      el("section", { class: "panel" }, el("h2", { text: "Tables" }), el("table", { "aria-label": "Tables" },
        el("thead", {}, el("tr", {}, el("th", { text: "Table" }), el("th", { text: "Rows" }), el("th", { text: "Size" }))),
        el("tbody", {}, ...db.tables.map((t) => el("tr", {},
          el("td", {}, el("a", { href: `#/database/${t.name}`, text: t.name })), el("td", { text: String(t.rows) }), el("td", { text: bytes(t.bytes) }))))))));
    return db;
  }

  async function showBackups() {
    const all = await api("GET", "/api/db/backups");
    snapshots.replaceChildren(...(all.length ? all.map((b) => el("tr", { "data-backup": b.name },
      el("td", { title: b.path, text: datetime(b.snapshot.taken_at) }), el("td", { text: String(b.snapshot.head) }),
      el("td", { text: String(b.snapshot.files) }), el("td", { text: String(b.snapshot.blobs) }), el("td", { text: bytes(b.bytes) }),
      el("td", { "data-col": "verified" }, b.verified ? badge(b.verified.ok ? "checks out" : "damaged", b.verified.ok ? "ok" : "bad") : badge("not checked", "muted")),
      el("td", { "data-col": "actions" }, button("Verify", (v) => busy(v, async () => {
        const r = await api("POST", `/api/db/backups/${encodeURIComponent(b.name)}/verify`);
        notice(`${b.name}: ${r.detail}`, r.ok ? "ok" : "error");
        await showBackups();
      }), "ghost small")))) : [el("tr", {}, el("td", { colspan: "7", class: "empty", text: "No backups yet: Back up now, or start the server with --backup-every 6h." }))]));
  }

  async function checkHealth() {
    const h = await api("GET", "/api/db/health");
    health.replaceChildren(
      el("p", {}, h.ok ? badge("healthy", "ok") : badge("needs attention", "bad")),
      el("ul", { class: "checks" }, ...h.checks.map((c) => el("li", {}, badge(c.ok ? "ok" : "failed", c.ok ? "ok" : "bad"), el("strong", { text: ` ${c.name} ` }), el("span", { class: "muted", text: c.detail })))));
  }

  async function run() {
    const r = await api("POST", "/api/db/query", { sql: sql.value }).catch((e) => ({ error: e }));
    if (r.error) {
      result.replaceChildren(el("p", { class: "error", text: `${r.error.code}: ${r.error.message}` }));
      return;
    }
    result.replaceChildren(
      el("p", { class: "muted", text: `${r.rows.length} rows in ${r.elapsed_ms} ms${r.truncated ? ` (stopped at the cap of ${r.row_cap})` : ""}` }),
      el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Query result, scrollable" }, el("table", { "aria-label": "Query result" },
        el("thead", {}, el("tr", {}, ...r.columns.map((c) => el("th", { text: c })))),
        el("tbody", {}, ...r.rows.map((row) => el("tr", {}, ...row.map((v) => el("td", { text: v === null ? "NULL" : String(v) }))))))));
  }
  sql.onkeydown = (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); } };

  const db = await showInfo();
  showBackups().catch((e) => snapshots.replaceChildren(el("tr", {}, el("td", { colspan: "7", class: "error", text: e.message }))));
  checkHealth().catch((e) => health.replaceChildren(el("p", { class: "error", text: e.message })));
  const name = db.tables.some((t) => t.name === table) ? table : "clients";
  const first = await api("GET", `/api/db/tables/${name}?per_page=1`);
  const picker = el("select", { "aria-label": "Table" }, ...db.tables.map((t) => el("option", { value: t.name, text: t.name })));
  picker.value = name;
  picker.onchange = () => { location.hash = `#/database/${picker.value}`; };
  const rows = pagedTable({
    label: `Rows of ${name}`,
    columns: first.columns.map((c) => ({ key: c, label: c, sort: true, render: (r) => cell(r[c]) })),
    load: async (p) => (await api("GET", `/api/db/tables/${name}` + qs(p))).page,
    empty: "This table is empty.",
  });
  browser.replaceChildren(el("div", { class: "title-row" }, el("h2", { text: "Browse" }), picker), rows.root);
  await rows.reload();
  return () => {};
}

function cell(v) {
  if (v === null || v === undefined) return el("span", { class: "muted", text: "NULL" });
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  return s.length > 80 ? el("span", { title: s, text: s.slice(0, 80) + "…" }) : s;
}
