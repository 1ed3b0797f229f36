// Alerts: where they go (webhooks, e-mail), which rules route them, a test, and every delivery attempt.

import { api, qs } from "../api.js";
import * as live from "../live.js";
import { datetime, el } from "../format.js";
import { badge, busy, button, confirmAction, field, notice, pagedTable, throttle, toolbar } from "../ui.js";

export const title = "Alerts";

const KIND_NAMES = {
  transfer_failed: "Transfer failed",
  verification_failed: "Verification failed",
  backup_overdue: "Backup overdue",
  client_timeout: "Client timed out",
  chain_broken: "Chain broken",
  disk_nearly_full: "Disk nearly full",
  site_broken: "Site broken (hub)",
  test: "Test",
};

export async function mount(root) {
  const targets = el("tbody");
  const rules = el("tbody");
  let setup = { targets: [], rules: [], kinds: [], email: false };
  const targetName = (id) => setup.targets.find((t) => t.id === id)?.name || id.slice(0, 8);

  // Adding a target.
  const name = el("input", { "aria-label": "Target name", placeholder: "ops channel", required: "" });
  const kind = el("select", { "aria-label": "Target kind" }, el("option", { value: "webhook", text: "Webhook" }), el("option", { value: "email", text: "E-mail" }));
  const address = el("input", { "aria-label": "Target address", placeholder: "https://ntfy.sh/my-topic", required: "", size: "40" });
  const emailNote = el("p", { class: "muted", hidden: "", text: "E-mail needs an SMTP relay: start the server with --smtp URL." });
  kind.onchange = () => {
    address.placeholder = kind.value === "email" ? "ops@example.com" : "https://ntfy.sh/my-topic";
    emailNote.hidden = kind.value !== "email" || setup.email;
  };
  const addTarget = el("button", { type: "submit", text: "Add target" });
  const targetForm = el("form", { class: "toolbar" }, field("Name", name), field("Kind", kind), field("Webhook URL or address", address), addTarget);
  targetForm.onsubmit = (ev) => {
    ev.preventDefault();
    busy(addTarget, async () => {
      const t = await api("POST", "/api/alerts/targets", { name: name.value.trim(), kind: kind.value, address: address.value.trim() });
      notice(`${t.name} added; add a rule to route alerts to it`);
      name.value = address.value = "";
      await reload();
    });
  };

  // Adding a rule.
  const ruleTarget = el("select", { "aria-label": "Rule target" });
  const ruleClient = el("select", { "aria-label": "Rule client" }, el("option", { value: "", text: "Every client" }));
  const kinds = el("div", { class: "kinds", role: "group", "aria-label": "Alert kinds" });
  const addRule = el("button", { type: "submit", text: "Add rule" });
  const ruleForm = el("form", {}, toolbar(field("Send to", ruleTarget), field("About", ruleClient), addRule), kinds);
  ruleForm.onsubmit = (ev) => {
    ev.preventDefault();
    busy(addRule, async () => {
      const chosen = [...kinds.querySelectorAll("input:checked")].map((i) => i.value);
      if (!ruleTarget.value) throw new Error("add a target first");
      if (!chosen.length) throw new Error("choose at least one kind of alert");
      const body = { target_id: ruleTarget.value, kinds: chosen };
      if (ruleClient.value) body.client_id = ruleClient.value;
      await api("POST", "/api/alerts/rules", body);
      notice(`alerts about ${chosen.map((k) => KIND_NAMES[k] || k).join(", ").toLowerCase()} go to ${targetName(ruleTarget.value)}`);
      await reload();
    });
  };

  const deliveries = pagedTable({
    label: "Deliveries",
    perPage: 20,
    columns: [
      { key: "at", label: "When", render: (d) => datetime(d.at) },
      { key: "target_id", label: "Target", render: (d) => targetName(d.target_id) },
      { key: "kind", label: "Kind", render: (d) => KIND_NAMES[d.kind] || d.kind },
      { key: "outcome", label: "Outcome", render: (d) => badge(d.outcome.replace("_", " "), { delivered: "ok", failed: "warn", gave_up: "bad" }[d.outcome]) },
      { key: "attempt", label: "Attempt" },
      { key: "alerted_position", label: "Event", render: (d) => el("a", { href: `#/audit/${d.alerted_position}`, text: `#${d.alerted_position}` }) },
      { key: "error", label: "Error", render: (d) => el("span", { title: d.error || "", text: d.error || "" }) },
    ],
    load: (p) => api("GET", "/api/alerts/deliveries" + qs(p)),
    empty: "No alert has been sent yet.",
  });

  function render() {
    targets.replaceChildren(...(setup.targets.length ? setup.targets.map((t) => el("tr", { "data-target": t.id },
      el("td", { text: t.name }), el("td", {}, badge(t.kind, "muted")), el("td", { "data-col": "address", title: t.address, text: t.address }),
      el("td", { text: String(t.delivered) }), el("td", { text: String(t.failed_attempts) }),
      el("td", { text: datetime(t.last_delivered_at) || "never" }),
      el("td", { class: t.last_error ? "error" : "muted", title: t.last_error || "", text: t.last_error || "–" }),
      el("td", { "data-col": "actions" }, el("div", { class: "row-actions" },
        button("Send a test", (b) => busy(b, async () => {
          await api("POST", `/api/alerts/targets/${t.id}/test`);
          notice(`a test alert is on its way to ${t.name}`);
        }), "ghost small"),
        button("Remove", (b) => busy(b, async () => {
          if (!(await confirmAction(`Remove ${t.name} and the rules that send to it?`, "Remove"))) return;
          await api("DELETE", `/api/alerts/targets/${t.id}`);
          notice(`${t.name} removed`);
          await reload();
        }), "ghost small danger-text"))))) : [el("tr", {}, el("td", { colspan: "8", class: "empty", text: "No targets yet: add a webhook or an e-mail address below." }))]));
    rules.replaceChildren(...(setup.rules.length ? setup.rules.map((r) => el("tr", {},
      el("td", { text: targetName(r.target_id) }),
      el("td", { text: r.kinds.map((k) => KIND_NAMES[k] || k).join(", ") }),
      el("td", {}, r.client_id ? el("a", { href: `#/clients/${r.client_id}`, text: r.client_name || r.client_id.slice(0, 8) }) : "every client"),
      el("td", { "data-col": "actions" }, button("Remove", (b) => busy(b, async () => {
        await api("DELETE", `/api/alerts/rules/${r.id}`);
        notice("rule removed");
        await reload();
      }), "ghost small danger-text")))) : [el("tr", {}, el("td", { colspan: "4", class: "empty", text: "No rules: nothing is sent until a rule routes it." }))]));
    const chosen = ruleTarget.value;
    ruleTarget.replaceChildren(...setup.targets.map((t) => el("option", { value: t.id, text: t.name })));
    if (setup.targets.some((t) => t.id === chosen)) ruleTarget.value = chosen;
    if (!kinds.children.length) {
      kinds.replaceChildren(...setup.kinds.map((k) => el("label", {}, el("input", { type: "checkbox", value: k }), KIND_NAMES[k] || k)));
    }
    emailNote.hidden = kind.value !== "email" || setup.email;
    root.dataset.targets = String(setup.targets.length);
  }

  async function reload() {
    setup = await api("GET", "/api/alerts");
    render();
  }

  root.replaceChildren(
    el("h1", { text: "Alerts" }),
    el("section", { class: "panel" }, el("h2", { text: "Targets" }),
      el("div", { class: "scroll", tabindex: "0" }, el("table", { "aria-label": "Alert targets" },
        el("thead", {}, el("tr", {}, ...["Name", "Kind", "Address", "Delivered", "Failed attempts", "Last delivered", "Last error", "Actions"].map((h) => el("th", { text: h })))), targets)),
      targetForm, emailNote),
    el("section", { class: "panel" }, el("h2", { text: "Rules" }),
      el("div", { class: "scroll", tabindex: "0" }, el("table", { "aria-label": "Alert rules" },
        el("thead", {}, el("tr", {}, ...["Target", "Kinds", "Client", "Actions"].map((h) => el("th", { text: h })))), rules)),
      ruleForm),
    el("section", { class: "panel" }, el("h2", { text: "Recent deliveries" }), deliveries.root),
  );

  const refresh = throttle(() => { reload().catch(() => {}); deliveries.changed(); }, 500);
  const stop = live.on("event", (e) => { if (e.type.startsWith("Alert")) refresh(); });
  try {
    const [, fleet] = await Promise.all([reload(), api("GET", "/api/clients?per_page=500&sort=name"), deliveries.reload()]);
    ruleClient.append(...fleet.items.map((c) => el("option", { value: c.id, text: c.name })));
  } catch (e) {
    stop();
    throw e;
  }
  return stop;
}
