// Tiny DOM helpers: elements from tags, attributes and children; text is always text.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function announce(text) {
  const a = document.getElementById("announcer");
  a.textContent = "";
  setTimeout(() => (a.textContent = text), 50);
}

const fmt = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "short",
});

export function when(iso) {
  return iso ? fmt.format(new Date(iso)) : "—";
}

export function num(v, digits = 2) {
  return v === null || v === undefined ? "—" : Number(v).toFixed(digits).replace(/\.?0+$/, "");
}

export function view(title, ...children) {
  const main = document.getElementById("main");
  main.replaceChildren(h("h1", {}, title), ...children);
  document.title = `${title} · citytel console`;
  return main;
}
