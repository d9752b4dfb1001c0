// The console: sign in, then the views chosen by the URL's fragment; live events.
import { del, get, post, setCsrf } from "./api.js";
import { deviceView } from "./device.js";
import { announce, h, view } from "./dom.js";
import { gatewaysView } from "./gateways.js";
import { inboxView } from "./inbox.js";
import { alertsView } from "./alerts.js";
import { keysView } from "./keys.js";
import { mapView } from "./map.js";
import { subject } from "./inbox.js";

let cleanup = null;
let events = null;

function signInView(message) {
  const key = h("input", { id: "key", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { id: "sign-in-error", class: "error", role: "alert" }, message || "");
  const form = h(
    "form",
    { class: "sign-in", "aria-describedby": "sign-in-help" },
    h("p", { id: "sign-in-help" }, "Sign in with your API key (from `citytel apikey create`). It is sent once and exchanged for a session; it is not kept in the browser."),
    h("div", { class: "field" }, h("label", { for: "key" }, "API key"), key),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const s = await post("/v1/session", { key: key.value });
      key.value = "";
      signedIn(s);
    } catch (err) {
      error.textContent = `Sign-in failed: ${err.message}`;
    }
  });
  view("Sign in", form);
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  key.focus();
}

function signedIn(s) {
  setCsrf(s.csrf_token);
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  document.getElementById("who").textContent = `Signed in: ${s.name} (${s.role})`;
  for (const id of ["nav-keys", "nav-alerts"]) // admins manage keys and alerts
    document.getElementById(id).hidden = s.role !== "admin";
  listen();
  if (!location.hash || location.hash === "#/sign-in") location.hash = "#/map";
  else route();
}

function listen() {
  events?.close();
  const state = document.getElementById("live-state");
  events = new EventSource("/v1/live");
  events.addEventListener("ready", () => {
    state.textContent = "Live";
    state.dataset.live = "on";
  });
  events.addEventListener("error", () => {
    state.textContent = "Live: reconnecting";
    state.dataset.live = "off";
  });
  events.addEventListener("anomaly", (e) => {
    const a = JSON.parse(e.data);
    if (a.op === "insert") announce(`New ${a.severity} anomaly on ${subject(a)}: ${a.detector}${a.metric ? ` on ${a.metric}` : ""}.`);
    window.dispatchEvent(new CustomEvent("citytel:anomaly", { detail: a }));
  });
  events.addEventListener("gateway", (e) => {
    const g = JSON.parse(e.data);
    announce(`Gateway ${g.gateway_id} is ${g.status}.`);
    window.dispatchEvent(new CustomEvent("citytel:gateway", { detail: g }));
  });
}

async function route() {
  cleanup?.();
  cleanup = null;
  const [, page, arg] = location.hash.split("/").map(decodeURIComponent);
  for (const a of document.querySelectorAll("#nav a"))
    a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${page}`) && a.setAttribute("aria-current", "page");
  try {
    if (page === "anomalies") cleanup = await inboxView();
    else if (page === "device" && arg) cleanup = await deviceView(arg);
    else if (page === "gateways") cleanup = await gatewaysView(arg);
    else if (page === "keys") cleanup = await keysView();
    else if (page === "alerts") cleanup = await alertsView();
    else cleanup = await mapView();
    document.getElementById("main").focus({ preventScroll: true });
  } catch (err) {
    if (err.status !== 401) view("Something went wrong", h("p", { role: "alert" }, err.message));
  }
}

window.addEventListener("citytel:signed-out", () => {
  events?.close();
  signInView("Your session has ended: sign in again.");
});
// "#main" is the skip link's target, not a view
window.addEventListener("hashchange", () => location.hash.startsWith("#/") && !document.getElementById("nav").hidden && route());
document.getElementById("sign-out").addEventListener("click", async () => {
  await del("/v1/session");
  events?.close();
  setCsrf(null);
  signInView("Signed out.");
});

get("/v1/session")
  .then(signedIn)
  .catch(() => signInView());
