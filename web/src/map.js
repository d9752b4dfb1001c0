// The map: every device drawn on one canvas (no tile server needed), clustered on a grid
// when zoomed out; filters; a bounding-box selection that lists its devices.
import L from "leaflet";
import { get, query } from "./api.js";
import { h, view } from "./dom.js";
import { RANK, STATES, drawShape, legend } from "./shapes.js";

const CELL_PX = 48; // grid cell of a cluster
const DETAIL_ZOOM = 15; // from here on, every device is drawn by itself
const DETAIL_MAX = 4000; // or earlier, when this few are in view
const TILES_KEY = "citytel.tiles";

function select(id, label, options) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("select", { id }, options.map(([v, t]) => h("option", { value: v }, t))),
  );
}

// Web Mercator at zoom 0 (a 256-pixel world), as Leaflet projects.
function project(lon, lat) {
  const s = Math.sin((Math.max(-85.05, Math.min(85.05, lat)) * Math.PI) / 180);
  return [((lon + 180) / 360) * 256, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * 256];
}

class DeviceLayer extends L.Layer {
  constructor(onFirstDraw) {
    super();
    this.data = null;
    this.onFirstDraw = onFirstDraw;
    this.drawn = []; // [x, y, index] of devices drawn one by one, for clicks
    this.clusters = [];
  }
  setData(data) {
    const n = data.count;
    this.data = data;
    this.x = new Float64Array(n);
    this.y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const [x, y] = project(data.lon[i], data.lat[i]);
      this.x[i] = x;
      this.y[i] = y;
    }
    if (this._map) this.draw();
  }
  onAdd(map) {
    this.canvas = L.DomUtil.create("canvas", "device-canvas");
    this.canvas.setAttribute("aria-hidden", "true");
    map.getPanes().overlayPane.appendChild(this.canvas);
    map.on("moveend resize", this.draw, this);
    this.draw();
  }
  onRemove(map) {
    map.off("moveend resize", this.draw, this);
    this.canvas.remove();
  }
  draw() {
    const map = this._map;
    if (!map || !this.data) return;
    const size = map.getSize();
    const dpr = window.devicePixelRatio || 1;
    const c = this.canvas;
    c.width = size.x * dpr;
    c.height = size.y * dpr;
    c.style.width = `${size.x}px`;
    c.style.height = `${size.y}px`;
    L.DomUtil.setPosition(c, map.containerPointToLayerPoint([0, 0]));
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const scale = 2 ** map.getZoom();
    const o = map.getPixelBounds().min;
    const { x, y } = this;
    const st = this.data.state;
    const n = this.data.count;
    const w = size.x;
    const hgt = size.y;
    let inView = 0;
    for (let i = 0; i < n; i++) {
      const px = x[i] * scale - o.x;
      const py = y[i] * scale - o.y;
      if (px >= -8 && px <= w + 8 && py >= -8 && py <= hgt + 8) inView++;
    }
    this.inView = inView;
    this.drawn = [];
    this.clusters = [];
    if (map.getZoom() >= DETAIL_ZOOM || inView <= DETAIL_MAX) this.drawEach(ctx, scale, o, w, hgt);
    else this.drawClusters(ctx, scale, o, w, hgt);
    if (this.onFirstDraw) {
      const f = this.onFirstDraw;
      this.onFirstDraw = null;
      f();
    }
    this.fire("drawn");
  }
  drawEach(ctx, scale, o, w, hgt) {
    const { x, y } = this;
    const st = this.data.state;
    // worst drawn last, on top
    for (const s of [0, 5, 4, 1, 2, 3]) {
      for (let i = 0; i < this.data.count; i++) {
        if (st[i] !== s) continue;
        const px = x[i] * scale - o.x;
        const py = y[i] * scale - o.y;
        if (px < -8 || px > w + 8 || py < -8 || py > hgt + 8) continue;
        drawShape(ctx, s, px, py, 5);
        this.drawn.push([px, py, i]);
      }
    }
  }
  drawClusters(ctx, scale, o, w, hgt) {
    const cols = Math.ceil(w / CELL_PX) + 2;
    const rows = Math.ceil(hgt / CELL_PX) + 2;
    const count = new Int32Array(cols * rows);
    const worst = new Int8Array(cols * rows).fill(-1);
    const sx = new Float64Array(cols * rows);
    const sy = new Float64Array(cols * rows);
    const { x, y } = this;
    const st = this.data.state;
    for (let i = 0; i < this.data.count; i++) {
      const px = x[i] * scale - o.x;
      const py = y[i] * scale - o.y;
      if (px < -CELL_PX || px > w + CELL_PX || py < -CELL_PX || py > hgt + CELL_PX) continue;
      const k = (Math.floor(py / CELL_PX) + 1) * cols + Math.floor(px / CELL_PX) + 1;
      if (k < 0 || k >= count.length) continue;
      count[k]++;
      sx[k] += px;
      sy[k] += py;
      if (worst[k] < 0 || RANK[st[i]] > RANK[worst[k]]) worst[k] = st[i];
    }
    ctx.font = "bold 12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (let k = 0; k < count.length; k++) {
      if (!count[k]) continue;
      const cx = sx[k] / count[k];
      const cy = sy[k] / count[k];
      if (count[k] === 1) {
        drawShape(ctx, worst[k], cx, cy, 5);
        continue;
      }
      const r = Math.min(22, 10 + Math.log10(count[k]) * 3.5);
      const s = STATES[worst[k]];
      ctx.beginPath();
      ctx.arc(cx, cy, r, 0, 2 * Math.PI);
      ctx.fillStyle = "#ffffff";
      ctx.fill();
      ctx.lineWidth = 3;
      ctx.strokeStyle = s.colour;
      ctx.stroke();
      ctx.fillStyle = "#111827";
      const label = count[k] >= 10000 ? `${Math.round(count[k] / 1000)}k` : String(count[k]);
      ctx.fillText(label, cx, cy);
      drawShape(ctx, worst[k], cx + r * 0.8, cy - r * 0.8, 4.5);
      this.clusters.push([cx, cy, r]);
    }
  }
  nearest(point) {
    let best = null;
    let bestD = 100;
    for (const [px, py, i] of this.drawn) {
      const d = (px - point.x) ** 2 + (py - point.y) ** 2;
      if (d < bestD) [best, bestD] = [i, d];
    }
    return best;
  }
  countIn(bounds) {
    let n = 0;
    const { lon, lat } = this.data;
    for (let i = 0; i < this.data.count; i++)
      if (bounds.contains([lat[i], lon[i]])) n++;
    return n;
  }
}

export async function mapView() {
  const t0 = performance.now();
  const status = h("p", { id: "map-status", role: "status" }, "Loading devices…");
  const mapEl = h("div", { id: "map", class: "map", role: "region", "aria-label": "Device map" });
  const list = h("div", { id: "selection" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Map filters" },
    select("f-kind", "Kind", [["", "All kinds"]]),
    select("f-gateway", "Gateway", [["", "All gateways"]]),
    select("f-state", "State", [["", "All states"], ...STATES.map((s) => [s.name, s.label])]),
    h("button", { type: "button", id: "select-area" }, "Select an area"),
    h("button", { type: "button", id: "list-view" }, "List devices in view"),
  );
  const tiles = h(
    "details",
    { class: "settings" },
    h("summary", {}, "Map settings"),
    h(
      "div",
      { class: "field" },
      h("label", { for: "tile-url" }, "Base-map tile URL (optional, e.g. https://…/{z}/{x}/{y}.png)"),
      h("input", { id: "tile-url", type: "url", value: localStorage.getItem(TILES_KEY) || "" }),
      h("button", { type: "button", id: "save-tiles" }, "Save"),
    ),
  );
  view("Map", form, status, h("div", { class: "map-wrap" }, mapEl, legend()), tiles, list);

  const map = L.map(mapEl, {
    zoomAnimation: false,
    boxZoom: false,
    attributionControl: false,
    minZoom: 2,
    maxZoom: 19,
    worldCopyJump: false,
  }).setView([0, 0], 2);
  const url = localStorage.getItem(TILES_KEY);
  if (url) L.tileLayer(url, { maxZoom: 19 }).addTo(map);
  const layer = new DeviceLayer(() => {
    // since navigation start: page, script, sign-in check, map data, first drawing
    window.citytelMetrics = { mapRenderedMs: performance.now(), viewMs: performance.now() - t0 };
    performance.mark("citytel-map-rendered");
    setTimeout(() => {
      window.citytelMetrics.mapInteractiveMs = performance.now();
      performance.mark("citytel-map-interactive");
    }, 0);
  }).addTo(map);
  layer.on("drawn", () => {
    status.textContent = `${layer.data.count.toLocaleString("en")} devices; ${layer.inView.toLocaleString("en")} in view.`;
  });
  map.on("click", async (e) => {
    const i = layer.nearest(e.containerPoint);
    if (i !== null) {
      // the map's data has no ids (a third of its size): ask for the device at that spot
      const [x, y, d] = [layer.data.lon[i], layer.data.lat[i], 2e-5];
      const found = await get("/v1/devices", { bbox: [x - d, y - d, x + d, y + d].join(","), limit: 1 });
      if (found.items.length) location.hash = `#/device/${encodeURIComponent(found.items[0].device_id)}`;
    }
    else if (layer.clusters.some(([cx, cy, r]) => Math.hypot(cx - e.containerPoint.x, cy - e.containerPoint.y) <= r))
      map.setView(e.latlng, Math.min(map.getZoom() + 2, 19));
  });

  const filters = () => ({
    kind: form.querySelector("#f-kind").value,
    gateway: form.querySelector("#f-gateway").value,
    state: form.querySelector("#f-state").value,
  });
  let first = true;
  let asked = 0; // an answer to an earlier choice that arrives late is dropped
  async function load() {
    const mine = ++asked;
    const data = await get("/v1/map", filters());
    if (mine !== asked) return;
    if (first) {
      fillOptions(form.querySelector("#f-kind"), data.kinds);
      fillOptions(form.querySelector("#f-gateway"), data.gateways.filter(Boolean));
      if (data.count) {
        let [x0, y0, x1, y1] = [180, 90, -180, -90];
        for (let i = 0; i < data.count; i++) {
          x0 = Math.min(x0, data.lon[i]);
          x1 = Math.max(x1, data.lon[i]);
          y0 = Math.min(y0, data.lat[i]);
          y1 = Math.max(y1, data.lat[i]);
        }
        map.fitBounds([[y0, x0], [y1, x1]], { padding: [20, 20], animate: false });
      }
      first = false;
    }
    layer.setData(data);
    status.dataset.filters = query(filters()); // what the drawn map shows (tests wait on it)
  }
  form.addEventListener("change", (e) => e.target.tagName === "SELECT" && load());
  form.querySelector("#list-view").addEventListener("click", () => listIn(map.getBounds()));
  selectArea(map, form.querySelector("#select-area"), listIn);
  tiles.querySelector("#save-tiles").addEventListener("click", () => {
    localStorage.setItem(TILES_KEY, tiles.querySelector("#tile-url").value.trim());
    mapView();
  });

  async function listIn(b) {
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
      .map((v, i) => Math.max(i % 2 ? -90 : -180, Math.min(i % 2 ? 90 : 180, v)).toFixed(6));
    const f = filters();
    const page = await get("/v1/devices", { bbox: bbox.join(","), kind: f.kind, gateway: f.gateway, limit: 100 });
    const total = layer.countIn(b);
    list.replaceChildren(
      h("h2", {}, "Devices in the selection"),
      h("p", {}, `${total.toLocaleString("en")} devices; the first ${page.items.length} by id:`),
      h(
        "table",
        {},
        h("caption", { class: "visually-hidden" }, "Devices in the selection"),
        h("thead", {}, h("tr", {}, ["Device", "Kind", "Gateway", "Gateway status"].map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          page.items.map((d) =>
            h(
              "tr",
              {},
              h("td", {}, h("a", { href: `#/device/${encodeURIComponent(d.device_id)}` }, d.device_id)),
              h("td", {}, d.kind || "not announced"),
              h("td", {}, d.gateway || "—"),
              h("td", {}, d.status),
            ),
          ),
        ),
      ),
    );
    list.querySelector("h2").setAttribute("tabindex", "-1");
    list.querySelector("h2").focus();
  }

  // a new or changed anomaly, or a gateway going offline or online, changes states
  const reload = debounce(load, 1000);
  window.addEventListener("citytel:anomaly", reload);
  window.addEventListener("citytel:gateway", reload);
  await load();
  return () => {
    window.removeEventListener("citytel:anomaly", reload);
    window.removeEventListener("citytel:gateway", reload);
    map.remove();
  };
}

function fillOptions(sel, values) {
  for (const v of values) sel.append(h("option", { value: v }, v));
}

function debounce(f, ms) {
  let t = null;
  return () => {
    clearTimeout(t);
    t = setTimeout(f, ms);
  };
}

// "Select an area": the next drag on the map draws a box and lists the devices in it.
function selectArea(map, button, done) {
  let armed = false;
  let start = null;
  let box = null;
  button.setAttribute("aria-pressed", "false");
  button.addEventListener("click", () => {
    armed = !armed;
    button.setAttribute("aria-pressed", String(armed));
    map.getContainer().classList.toggle("selecting", armed);
    if (armed) map.dragging.disable();
    else map.dragging.enable();
  });
  map.on("mousedown", (e) => {
    if (!armed) return;
    start = e.latlng;
    box = L.rectangle([start, start], { color: "#1d4ed8", weight: 2, fill: false, interactive: false }).addTo(map);
  });
  map.on("mousemove", (e) => start && box.setBounds([start, e.latlng]));
  map.on("mouseup", () => {
    if (!start) return;
    const b = box.getBounds();
    start = null;
    armed = false;
    button.setAttribute("aria-pressed", "false");
    map.getContainer().classList.remove("selecting");
    map.dragging.enable();
    done(b);
    setTimeout(() => box.remove(), 1500);
  });
}
