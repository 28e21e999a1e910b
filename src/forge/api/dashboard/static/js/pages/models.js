// Models: the registry by domain and stage (staging → candidate → production; archived kept for rollback).
import { all } from "../api.js";
import { h, mount, badge, num, when, shortId, modelName } from "../dom.js";

const STAGES = ["staging", "candidate", "production", "archived"];

export async function render(root) {
  const models = await all("/api/v1/models", {}, 1000);
  const byDomain = {};
  for (const m of models) (byDomain[m.domain] ||= []).push(m);
  const card = (m) => {
    const ev = m.metrics?.evaluation || {};
    return h("div", { class: "card", "data-model": m.versionId },
      h("a", { href: `#/models/${m.versionId}` }, h("b", {}, shortId(m.versionId))), " ",
      ev.decision ? badge(ev.decision) : null,
      h("div", { class: "muted" }, `score ${num(ev.score, 1)} · ${when(m.createdAt).slice(0, 11)}`),
      h("div", { class: "muted mono" }, m.providerModelId || modelName(m.baseModel)));
  };
  mount(root, h("h1", {}, "Models"),
    Object.keys(byDomain).length ? Object.entries(byDomain).sort().map(([domain, list]) =>
      h("section", { class: "panel", "aria-labelledby": `m-${domain}` }, h("h2", { id: `m-${domain}` }, domain),
        h("div", { class: "stage-cols" }, STAGES.map((stage) => h("div", { "aria-label": `${domain} ${stage}` },
          h("h3", {}, badge(stage), ` ${list.filter((m) => m.stage === stage).length}`),
          list.filter((m) => m.stage === stage).reverse().map(card))))))
      : h("p", { class: "panel muted" }, "No models yet: a job registers one when its training finishes."));
}
