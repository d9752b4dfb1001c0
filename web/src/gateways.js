// Gateways: online/offline, message rate, lost and refused messages, last seen; worst first.
import { get } from "./api.js";
import { h, num, view, when } from "./dom.js";

// offline first, then the most lost+refused, then the longest silent
function worstFirst(a, b) {
  const off = (g) => (g.status === "offline" ? 0 : g.status === "unknown" ? 1 : 2);
  return off(a) - off(b) || (b.lost_messages + b.refused_messages) - (a.lost_messages + a.refused_messages) || Date.parse(a.last_seen || 0) - Date.parse(b.last_seen || 0);
}

const MARK = { online: "●", offline: "■", unknown: "?" };

export async function gatewaysView(only) {
  const g = await get("/v1/gateways", { lookback: 3600 });
  const items = g.items.filter((x) => !only || x.gateway_id === only).sort(worstFirst);
  const rows = items.map((x) =>
    h(
      "tr",
      { id: `gw-${x.gateway_id}` },
      h("th", { scope: "row" }, x.gateway_id),
      h("td", {}, h("span", { class: `gw gw-${x.status}`, "aria-hidden": "true" }, MARK[x.status] || "?"), " ", x.status),
      h("td", {}, x.devices),
      h("td", {}, num(x.message_rate, 3)),
      h("td", {}, x.lost_messages),
      h("td", {}, x.refused_messages),
      h("td", {}, when(x.last_seen)),
    ),
  );
  view(
    only ? `Gateway ${only}` : "Gateways",
    h("p", {}, "Worst first: offline, then most lost and refused messages, then longest silent. Figures over the last hour."),
    h(
      "table",
      {},
      h("caption", {}, "Gateways"),
      h("thead", {}, h("tr", {}, ["Gateway", "Status", "Devices", "Messages/s", "Lost", "Refused", "Last seen"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
    only ? h("p", {}, h("a", { href: "#/gateways" }, "All gateways")) : "",
  );
  const onLive = () => gatewaysView(only);
  window.addEventListener("citytel:gateway", onLive, { once: true });
  return () => window.removeEventListener("citytel:gateway", onLive);
}
