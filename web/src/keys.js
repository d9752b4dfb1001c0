// API keys, for admins: list, create (the key is shown once), revoke.
import { del, get, post } from "./api.js";
import { announce, h, view, when } from "./dom.js";

export async function keysView() {
  const keys = await get("/v1/apikeys");
  const name = h("input", { id: "k-name", maxlength: 200 });
  const role = h("select", { id: "k-role" }, h("option", { value: "reader" }, "reader"), h("option", { value: "admin" }, "admin"));
  const made = h("div", { id: "new-key", role: "status" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "New API key" },
    h("div", { class: "field" }, h("label", { for: "k-name" }, "Name (who will use it)"), name),
    h("div", { class: "field" }, h("label", { for: "k-role" }, "Role"), role),
    h("button", { type: "submit" }, "Create key"),
  );
  const rows = keys.items.map((k) =>
    h(
      "tr",
      { id: `key-${k.id}` },
      h("td", {}, k.prefix),
      h("td", {}, k.name || "—"),
      h("td", {}, k.role),
      h("td", {}, when(k.created_at)),
      h("td", {}, k.revoked_at ? `revoked ${when(k.revoked_at)}` : "valid"),
      h(
        "td",
        {},
        k.revoked_at
          ? ""
          : h("button", { type: "button", "aria-label": `Revoke key ${k.prefix}${k.name ? ` (${k.name})` : ""}`, onclick: () => revoke(k) }, "Revoke"),
      ),
    ),
  );
  view(
    "API keys",
    form,
    made,
    h(
      "table",
      {},
      h("caption", {}, "API keys"),
      h("thead", {}, h("tr", {}, ["Prefix", "Name", "Role", "Created", "State", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const k = await post("/v1/apikeys", { name: name.value.trim(), role: role.value });
    await keysView();
    document.getElementById("new-key").replaceChildren(
      h("p", {}, `New ${k.role} key for ${k.name || "(no name)"}; copy it now, it is shown this once:`),
      h("p", {}, h("code", { id: "new-key-value" }, k.key)),
    );
  });
  async function revoke(k) {
    if (!window.confirm(`Revoke key ${k.prefix}? Requests with it will be refused.`)) return;
    await del(`/v1/apikeys/${k.id}`);
    await keysView();
    announce(`Key ${k.prefix} revoked.`);
  }
}
