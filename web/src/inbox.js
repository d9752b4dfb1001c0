// The anomaly inbox: newest first; acknowledge (who, when, a comment), resolve; search.
import { get, post } from "./api.js";
import { announce, h, num, view, when } from "./dom.js";

const LIFECYCLES = [
  ["unresolved", "Not resolved"],
  ["open", "Open"],
  ["acknowledged", "Acknowledged"],
  ["resolved", "Resolved"],
  ["", "All"],
];

function field(id, label, control) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function lifecycleText(a) {
  if (a.lifecycle === "resolved")
    return [h("strong", {}, "Resolved"), ` by ${a.resolved_by}, ${when(a.resolved_at)}`, a.resolve_comment ? `: “${a.resolve_comment}”` : ""];
  if (a.lifecycle === "acknowledged")
    return [h("strong", {}, "Acknowledged"), ` by ${a.acked_by}, ${when(a.acked_at)}`, a.ack_comment ? `: “${a.ack_comment}”` : ""];
  return [h("strong", {}, "Open")];
}

export function subject(a) {
  return a.device_id ? a.device_id : `gateway ${a.gateway}`;
}

function row(a, act) {
  const name = `anomaly ${a.id} on ${subject(a)}`;
  return h(
    "tr",
    { id: `anomaly-${a.id}`, "data-lifecycle": a.lifecycle },
    h("td", {}, when(a.started_at), a.open ? "" : h("br"), a.open ? "" : `ended ${when(a.ended_at)}`),
    h("td", {}, a.device_id ? h("a", { href: `#/device/${encodeURIComponent(a.device_id)}` }, a.device_id) : `gateway ${a.gateway}`),
    h("td", {}, a.metric || "whole device"),
    h("td", {}, a.detector),
    h("td", {}, h("span", { class: `sev sev-${a.severity}` }, a.severity)),
    h("td", {}, `${num(a.observed)} vs ${num(a.expected)}`),
    h("td", { class: "lifecycle" }, lifecycleText(a)),
    h(
      "td",
      {},
      a.lifecycle === "open" ? h("button", { type: "button", "aria-label": `Acknowledge ${name}`, onclick: () => act("ack", a) }, "Acknowledge") : "",
      a.lifecycle !== "resolved" ? h("button", { type: "button", "aria-label": `Resolve ${name}`, onclick: () => act("resolve", a) }, "Resolve") : "",
    ),
  );
}

export async function inboxView() {
  const lifecycle = h("select", { id: "i-lifecycle" }, LIFECYCLES.map(([v, t]) => h("option", { value: v }, t)));
  const severity = h("select", { id: "i-severity" }, [["", "Any"], ["high", "High"], ["medium", "Medium"], ["low", "Low"]].map(([v, t]) => h("option", { value: v }, t)));
  const q = h("input", { id: "i-q", type: "search", maxlength: "200" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Anomaly filters" },
    field("i-lifecycle", "Status", lifecycle),
    field("i-severity", "Severity", severity),
    field("i-q", "Search device, gateway or comment", q),
    h("button", { type: "submit" }, "Search"),
  );
  const body = h("tbody", { id: "inbox-rows" });
  const more = h("button", { type: "button", id: "more", hidden: true }, "Show older");
  const dialog = actionDialog();
  const table = h(
    "table",
    { class: "inbox" },
    h("caption", {}, "Anomalies, newest first"),
    h("thead", {}, h("tr", {}, ["Started", "Device", "Metric", "Detector", "Severity", "Observed vs expected", "Status", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    body,
  );
  view("Anomalies", form, table, more, dialog.el);

  let cursor = null;
  const params = () => ({ lifecycle: lifecycle.value, severity: severity.value, q: q.value.trim(), limit: 50 });
  let asked = 0; // an answer to an earlier search that arrives late is dropped
  async function load(append = false) {
    const mine = ++asked;
    const page = await get("/v1/anomalies", { ...params(), cursor: append ? cursor : null });
    if (mine !== asked) return;
    const rows = page.items.map((a) => row(a, act));
    if (append) body.append(...rows);
    else body.replaceChildren(...rows);
    if (!append && !rows.length) body.append(h("tr", {}, h("td", { colspan: 8 }, "No anomalies match.")));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  async function act(kind, a) {
    const comment = await dialog.ask(kind === "ack" ? `Acknowledge anomaly ${a.id} on ${subject(a)}` : `Resolve anomaly ${a.id} on ${subject(a)}`);
    if (comment === null) return;
    const after = await post(`/v1/anomalies/${a.id}/${kind}`, { comment });
    replace(after);
    announce(`${kind === "ack" ? "Acknowledged" : "Resolved"} anomaly ${a.id} on ${subject(a)}.`);
    document.getElementById(`anomaly-${a.id}`)?.querySelector("td.lifecycle")?.setAttribute("tabindex", "-1");
    document.getElementById(`anomaly-${a.id}`)?.querySelector("td.lifecycle")?.focus();
  }
  function replace(a) {
    const old = document.getElementById(`anomaly-${a.id}`);
    if (old) old.replaceWith(row(a, act));
    return Boolean(old);
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  form.addEventListener("change", (e) => e.target.tagName === "SELECT" && load());
  more.addEventListener("click", () => load(true));
  const onLive = (e) => {
    const a = e.detail;
    if (replace(a)) return;
    const p = params();
    const fits = (!p.lifecycle || p.lifecycle === a.lifecycle || (p.lifecycle === "unresolved" && a.lifecycle !== "resolved")) && (!p.severity || p.severity === a.severity) && !p.q;
    if (e.detail.op === "insert" && fits) {
      body.querySelector("td[colspan]")?.parentElement.remove();
      const r = row(a, act);
      r.classList.add("new");
      body.prepend(r);
    }
  };
  window.addEventListener("citytel:anomaly", onLive);
  await load();
  return () => window.removeEventListener("citytel:anomaly", onLive);
}

// A modal dialog asking for a comment: resolves to the comment, or null when cancelled.
function actionDialog() {
  const title = h("h2", { id: "dlg-title" });
  const text = h("textarea", { id: "dlg-comment", rows: 3, maxlength: 2000 });
  const el = h(
    "dialog",
    { "aria-labelledby": "dlg-title" },
    h(
      "form",
      { method: "dialog" },
      title,
      h("div", { class: "field" }, h("label", { for: "dlg-comment" }, "Comment (optional)"), text),
      h("div", { class: "buttons" }, h("button", { value: "ok", id: "dlg-ok" }, "Confirm"), " ", h("button", { value: "cancel", formnovalidate: true }, "Cancel")),
    ),
  );
  return {
    el,
    ask(heading) {
      title.textContent = heading;
      text.value = "";
      el.returnValue = "";
      el.showModal();
      text.focus();
      return new Promise((resolve) => {
        el.addEventListener("close", () => resolve(el.returnValue === "ok" ? text.value : null), { once: true });
      });
    },
  };
}
