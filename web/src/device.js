// A device: latest values, a chart of any metric over a chosen range (from rollups, the
// bucket following the range), its episodes drawn on the chart, its gateway and history.
import uPlot from "uplot";
import { get } from "./api.js";
import { h, num, view, when } from "./dom.js";
import { subject } from "./inbox.js";

// Range -> bucket: about 150-800 points whatever the range.
const RANGES = [
  ["6h", "6 hours", 6 * 3600e3, "1m"],
  ["24h", "24 hours", 86400e3, "5m"],
  ["7d", "7 days", 7 * 86400e3, "1h"],
  ["30d", "30 days", 30 * 86400e3, "1h"],
  ["365d", "1 year", 365 * 86400e3, "1d"],
];

function table(caption, head, rows) {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: head.length }, "None."))),
  );
}

// Shades each episode's span behind the line, so the anomaly is seen where it happened.
function episodesPlugin(episodes) {
  return {
    hooks: {
      drawClear: (u) => {
        const { ctx } = u;
        const top = u.bbox.top;
        const height = u.bbox.height;
        ctx.save();
        for (const e of episodes) {
          const x0 = u.valToPos(Date.parse(e.started_at) / 1000, "x", true);
          const x1 = u.valToPos((e.ended_at ? Date.parse(e.ended_at) : Date.now()) / 1000, "x", true);
          const left = Math.max(u.bbox.left, x0);
          const right = Math.min(u.bbox.left + u.bbox.width, Math.max(x1, x0 + 3));
          if (right <= left) continue;
          ctx.fillStyle = e.severity === "high" ? "rgba(185,28,28,0.22)" : "rgba(194,65,12,0.18)";
          ctx.fillRect(left, top, right - left, height);
        }
        ctx.restore();
      },
    },
  };
}

export async function deviceView(id) {
  const d = await get(`/v1/devices/${encodeURIComponent(id)}`);
  const history = await get("/v1/anomalies", { device: id, limit: 200 });
  const metricSel = h("select", { id: "d-metric" }, d.metrics.map((m) => h("option", { value: m.name }, `${m.name} (${m.unit})`)));
  const rangeSel = h("select", { id: "d-range" }, RANGES.map(([v, t]) => h("option", { value: v }, t)));
  rangeSel.value = "24h";
  const chartBox = h("div", { id: "chart", class: "chart" });
  const caption = h("figcaption", { id: "chart-caption" });
  view(
    `Device ${d.device_id}`,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Kind"), h("dd", {}, d.kind || "not announced"),
      h("dt", {}, "Gateway"), h("dd", {}, d.gateway ? h("a", { href: `#/gateways/${encodeURIComponent(d.gateway)}` }, d.gateway) : "—", ` (${d.status})`),
      h("dt", {}, "Position"), h("dd", {}, d.latitude === null ? "—" : `${num(d.latitude, 5)}, ${num(d.longitude, 5)}`),
      h("dt", {}, "Last seen"), h("dd", {}, when(d.last_seen)),
    ),
    table("Latest values", ["Metric", "Value", "Unit", "At"], d.metrics.map((m) => h("tr", {}, h("td", {}, m.name), h("td", {}, num(m.last_value, 3)), h("td", {}, m.unit), h("td", {}, when(m.last_seen))))),
    h("h2", {}, "Chart"),
    h(
      "form",
      { class: "filters", "aria-label": "Chart" },
      h("div", { class: "field" }, h("label", { for: "d-metric" }, "Metric"), metricSel),
      h("div", { class: "field" }, h("label", { for: "d-range" }, "Range, up to the last value"), rangeSel),
    ),
    h("figure", {}, chartBox, caption),
    table("History: anomaly episodes", ["Started", "Ended", "Metric", "Detector", "Severity", "Status"], history.items.map((a) =>
      h("tr", {}, h("td", {}, when(a.started_at)), h("td", {}, a.open ? "still open" : when(a.ended_at)), h("td", {}, a.metric || "whole device"), h("td", {}, a.detector), h("td", {}, a.severity), h("td", {}, a.lifecycle + (a.acked_by ? ` (${a.acked_by})` : ""))),
    )),
  );
  let plot = null;
  let asked = 0; // an answer to an earlier choice that arrives late is dropped
  async function draw() {
    const mine = ++asked;
    const metric = metricSel.value;
    if (!metric) {
      caption.textContent = "This device has no values yet.";
      return;
    }
    const [, label, span, bucket] = RANGES.find((r) => r[0] === rangeSel.value);
    const m = d.metrics.find((x) => x.name === metric);
    const end = new Date(Date.parse(m.last_seen) + 60e3);
    const start = new Date(end - span);
    const s = await get("/v1/series", { device: id, metric, from: start.toISOString(), to: end.toISOString(), bucket, agg: "avg", tz: "UTC" });
    if (mine !== asked) return;
    const pts = s.series[0]?.points || [];
    const eps = history.items.filter((a) => a.metric === metric || a.metric === null);
    const data = [pts.map((p) => Date.parse(p.time) / 1000), pts.map((p) => p.value)];
    plot?.destroy();
    plot = new uPlot(
      {
        width: Math.min(chartBox.clientWidth || 800, 1000),
        height: 280,
        series: [{}, { label: `${metric} (${m.unit})`, stroke: "#1d4ed8", width: 2 }],
        axes: [{ stroke: "#111827" }, { stroke: "#111827" }],
        plugins: [episodesPlugin(eps)],
      },
      data,
      chartBox,
    );
    chartBox.querySelector("canvas")?.setAttribute("aria-hidden", "true");
    const shown = eps.filter((e) => Date.parse(e.started_at) < +end && (!e.ended_at || Date.parse(e.ended_at) > +start));
    caption.textContent = `${metric} over ${label} to ${when(end.toISOString())}: ${pts.length} points, ${bucket} buckets (${s.series[0]?.source || "none"}); ${shown.length} anomaly episode(s) shaded.`;
  }
  metricSel.addEventListener("change", draw);
  rangeSel.addEventListener("change", draw);
  await draw();
  return () => plot?.destroy();
}

