// Domains: each task's settings as Forge validates them. Read-only until domains become per-tenant data.
import { api } from "../api.js";
import { h, mount, hbars, meta } from "../dom.js";

export async function render(root) {
  const { items } = await api("/api/v1/insights/domains");
  mount(root, h("h1", {}, "Domains"),
    h("p", { class: "muted" }, "Read-only: these come from the packaged domains and $FORGE_HOME/domains/*.toml."),
    items.map((d) => h("section", { class: "panel", "aria-labelledby": `dom-${d.name}` },
      h("div", { class: "spread" }, h("h2", { id: `dom-${d.name}` }, d.name),
        h("span", {}, h("a", { href: `#/canary/${d.name}`, "aria-label": `Canary of ${d.name}` }, "Canary"), " · ",
          h("code", {}, d.model_prefix))),
      h("p", {}, d.description),
      h("div", { class: "grid" },
        h("div", {}, h("h3", {}, "Gates"), meta(Object.entries(d.gates).map(([k, v]) => [k, String(v)])),
          h("h3", {}, "Routing"), meta(Object.entries(d.routing).map(([k, v]) => [k, String(v)])),
          h("h3", {}, "PII policy"), h("p", {}, d.pii_policy)),
        h("div", {}, h("h3", {}, "Scoring weights"),
          hbars(Object.entries(d.scoring).map(([label, value]) => ({ label, value })), { max: 1, format: (v) => v.toFixed(2) }),
          h("h3", {}, "Curation filters"), meta(Object.entries(d.filters).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") || "none" : String(v)])))),
      d.system_prompt ? h("details", {}, h("summary", {}, "System prompt"), h("pre", {}, d.system_prompt)) : null)));
}
