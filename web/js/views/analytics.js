// Analytics: the stats table over time (uploads, bytes, verifications, errors), charted with uPlot.

import { api, qs } from "../api.js";
import * as live from "../live.js";
import { bytes, el } from "../format.js";
import { field, throttle, toolbar } from "../ui.js";

export const title = "Analytics";

// Ranges offered, each with the bucket that gives it a readable number of points.
const RANGES = [
  { label: "Last hour", seconds: 3600, bucket: "minute" },
  { label: "Last 6 hours", seconds: 6 * 3600, bucket: "minute" },
  { label: "Last day", seconds: 86400, bucket: "hour" },
  { label: "Last 7 days", seconds: 7 * 86400, bucket: "hour" },
  { label: "Last 90 days", seconds: 90 * 86400, bucket: "day" },
];
const STEP = { minute: 60, hour: 3600, day: 86400 };
const SUFFIX = { minute: ":00Z", hour: ":00:00Z", day: "T00:00:00Z" };

const CHARTS = [
  { title: "Uploads, downloads and deletions", series: [["uploads", "Uploads", "#2f6fed"], ["downloads", "Downloads", "#1f9d55"], ["deletions", "Deletions", "#c98a00"]] },
  { title: "Bytes in and out", series: [["bytes_in", "In", "#2f6fed"], ["bytes_out", "Out", "#1f9d55"]], format: bytes },
  { title: "Verifications", series: [["verifications_passed", "Passed", "#1f9d55"], ["verifications_failed", "Failed", "#d64545"]] },
  { title: "Errors and registrations", series: [["errors", "Errors", "#d64545"], ["registrations", "Registrations", "#687082"]] },
];

let loading = null;

// Axis text and grid in the page's colours (light or dark).
function axis() {
  const css = getComputedStyle(document.documentElement);
  return { stroke: css.getPropertyValue("--muted").trim(), grid: { stroke: css.getPropertyValue("--line").trim(), width: 1 }, ticks: { show: false } };
}

// uPlot is a classic script (window.uPlot), loaded the first time the view opens.
function uplot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  loading ??= new Promise((resolve, reject) => {
    document.head.append(el("link", { rel: "stylesheet", href: "/vendor/uplot/uPlot.min.css" }));
    const script = el("script", { src: "/vendor/uplot/uPlot.iife.min.js" });
    script.onload = () => resolve(window.uPlot);
    script.onerror = () => { loading = null; reject(new Error("could not load the charting library")); };
    document.head.append(script);
  });
  return loading;
}

export async function mount(root) {
  const range = el("select", { "aria-label": "Range" }, ...RANGES.map((r, i) => el("option", { value: String(i), text: r.label })));
  const cards = el("section", { class: "cards", "aria-label": "Totals" });
  const grid = el("div", { class: "charts" });
  root.replaceChildren(el("h1", { text: "Analytics" }), toolbar(field("Range", range)), cards, grid);
  const UPlot = await uplot();

  let plots = [];
  async function draw() {
    const r = RANGES[Number(range.value)];
    const now = Math.floor(Date.now() / 1000);
    const from = now - r.seconds;
    const stats = await api("GET", "/api/stats" + qs({ bucket: r.bucket, from: new Date(from * 1000).toISOString() }));
    const t = stats.totals;
    cards.replaceChildren(...[
      ["Uploads", t.uploads], ["Bytes in", bytes(t.bytes_in)], ["Downloads", t.downloads], ["Bytes out", bytes(t.bytes_out)],
      ["Verified", t.verifications_passed], ["Failed verifications", t.verifications_failed], ["Errors", t.errors], ["Registrations", t.registrations],
    ].map(([label, value]) => el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value", text: String(value) }))));

    // Every bucket of the range, zero where nothing happened, so that the lines show the quiet periods too.
    const step = STEP[r.bucket];
    const byTime = new Map(stats.buckets.map((b) => [Date.parse(b.bucket + SUFFIX[r.bucket]) / 1000, b]));
    const xs = [];
    for (let x = Math.floor(from / step) * step; x <= now; x += step) xs.push(x);
    plots.forEach((p) => p.destroy());
    grid.replaceChildren();
    plots = CHARTS.map((c) => {
      const box = el("section", { class: "panel chart", "aria-label": c.title }, el("h2", { text: c.title }));
      grid.append(box);
      const data = [xs, ...c.series.map(([key]) => xs.map((x) => byTime.get(x)?.[key] ?? 0))];
      return new UPlot({
        width: Math.max(280, box.clientWidth - 32),
        height: 200,
        series: [{}, ...c.series.map(([, label, stroke]) => ({ label, stroke, width: 1.5, fill: stroke + "18", value: c.format ? (_, v) => (v == null ? "–" : c.format(v)) : undefined }))],
        axes: [{ ...axis() }, { ...axis(), values: c.format ? (_, ticks) => ticks.map(c.format) : undefined, size: c.format ? 70 : 50 }],
        scales: { y: { range: (_, min, max) => [0, Math.max(1, max)] } },
      }, data, box);
    });
    root.dataset.drawn = String((Number(root.dataset.drawn) || 0) + 1);
  }
  range.onchange = draw;
  await draw();

  const resize = throttle(() => plots.forEach((p) => p.setSize({ width: Math.max(280, p.root.parentNode.clientWidth - 32), height: 200 })), 200);
  window.addEventListener("resize", resize);
  const redraw = throttle(() => draw().catch(() => { /* the next event tries again */ }), 5000);
  const stop = live.on("event", (e) => {
    if (e.type.startsWith("File") || e.type.startsWith("Transfer") || e.type === "ClientRegistered" || e.type === "LogRecorded") redraw();
  });
  return () => {
    stop();
    window.removeEventListener("resize", resize);
    plots.forEach((p) => p.destroy());
  };
}
