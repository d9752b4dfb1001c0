// Alerts, for admins: endpoints, rules, and the outbox (failed deliveries stay visible).
import { get } from "./api.js";
import { h, view, when } from "./dom.js";

function table(caption, head, rows) {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: head.length }, "None."))),
  );
}

const any = (v) => (v === null || v === undefined ? "any" : String(v));

export async function alertsView() {
  const [endpoints, rules, failed, recent] = await Promise.all([
    get("/v1/alerts/endpoints"),
    get("/v1/alerts/rules"),
    get("/v1/alerts/outbox", { state: "failed", limit: 100 }),
    get("/v1/alerts/outbox", { limit: 50 }),
  ]);
  const url = new Map(endpoints.items.map((e) => [e.id, e.url]));
  const row = (o) =>
    h(
      "tr",
      {},
      h("td", {}, o.id),
      h("td", {}, url.get(o.endpoint) || o.endpoint),
      h("td", {}, `${o.episode} ${o.change}`),
      h("td", {}, o.state),
      h("td", {}, o.attempts),
      h("td", {}, o.last_error || "—"),
      h("td", {}, when(o.delivered_at || o.failed_at || o.next_attempt_at)),
    );
  const head = ["Id", "Endpoint", "Anomaly and change", "State", "Attempts", "Last error", "When"];
  view(
    "Alerts",
    h("p", {}, "Endpoints and rules are managed through /v1/alerts (docs/alerts.md). Failed deliveries stay listed here."),
    table("Failed deliveries", head, failed.items.map(row)),
    table("Endpoints", ["Id", "Name", "URL", "Enabled"], endpoints.items.map((e) =>
      h("tr", {}, h("td", {}, e.id), h("td", {}, e.name || "—"), h("td", {}, e.url), h("td", {}, e.enabled ? "yes" : "no")),
    )),
    table("Rules", ["Id", "Endpoint", "Kind", "Metric", "Detector", "Severity from", "Gateway", "Area", "Changes"], rules.items.map((r) =>
      h("tr", {}, h("td", {}, r.id), h("td", {}, url.get(r.endpoint) || r.endpoint), h("td", {}, any(r.kind)), h("td", {}, any(r.metric)), h("td", {}, any(r.detector)), h("td", {}, any(r.min_severity)), h("td", {}, any(r.gateway)), h("td", {}, r.bbox ? r.bbox.join(", ") : "any"), h("td", {}, r.changes.join(", "))),
    )),
    table("Latest notifications", head, recent.items.map(row)),
  );
}
