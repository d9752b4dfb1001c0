// Each device state has a colour AND a shape, so colour never carries state alone.
import { h } from "./dom.js";

export const STATES = [
  { name: "ok", label: "OK", colour: "#1b7a3a", shape: "circle" },
  { name: "low", label: "Anomaly, low", colour: "#8a6d00", shape: "triangle" },
  { name: "medium", label: "Anomaly, medium", colour: "#c2410c", shape: "diamond" },
  { name: "high", label: "Anomaly, high", colour: "#b91c1c", shape: "star" },
  { name: "offline", label: "Offline", colour: "#4b5563", shape: "square" },
  { name: "decommissioned", label: "Decommissioned", colour: "#6b21a8", shape: "cross" },
];
// worst first when a cluster shows one state for many devices
export const RANK = [0, 2, 3, 4, 1, -1];

function path(ctx, shape, x, y, r) {
  ctx.beginPath();
  if (shape === "circle") ctx.arc(x, y, r, 0, 2 * Math.PI);
  else if (shape === "triangle") {
    ctx.moveTo(x, y - r * 1.2);
    ctx.lineTo(x + r * 1.1, y + r * 0.8);
    ctx.lineTo(x - r * 1.1, y + r * 0.8);
    ctx.closePath();
  } else if (shape === "diamond") {
    ctx.moveTo(x, y - r * 1.3);
    ctx.lineTo(x + r * 1.1, y);
    ctx.lineTo(x, y + r * 1.3);
    ctx.lineTo(x - r * 1.1, y);
    ctx.closePath();
  } else if (shape === "star") {
    for (let i = 0; i < 10; i++) {
      const a = -Math.PI / 2 + (i * Math.PI) / 5;
      const k = i % 2 ? r * 0.6 : r * 1.5;
      ctx.lineTo(x + Math.cos(a) * k, y + Math.sin(a) * k);
    }
    ctx.closePath();
  } else if (shape === "square") ctx.rect(x - r, y - r, 2 * r, 2 * r);
  else {
    ctx.moveTo(x - r, y - r);
    ctx.lineTo(x + r, y + r);
    ctx.moveTo(x + r, y - r);
    ctx.lineTo(x - r, y + r);
  }
}

export function drawShape(ctx, state, x, y, r) {
  const s = STATES[state] || STATES[0];
  path(ctx, s.shape, x, y, r);
  if (s.shape === "cross") {
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = 2.5;
    ctx.stroke();
  } else if (s.shape === "square") {
    ctx.fillStyle = "#ffffff";
    ctx.fill();
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = 2;
    ctx.stroke();
  } else {
    ctx.fillStyle = s.colour;
    ctx.fill();
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 1;
    ctx.stroke();
  }
}

// A legend entry: the shape drawn on a small canvas, and the state's name as text.
export function legend() {
  return h(
    "ul",
    { class: "legend", "aria-label": "Map legend" },
    STATES.map((s, i) => {
      const c = h("canvas", { width: 20, height: 20, "aria-hidden": "true" });
      drawShape(c.getContext("2d"), i, 10, 10, 6);
      return h("li", {}, c, " ", s.label);
    }),
  );
}
