// One model: its evaluation (student vs production per task, the teacher similarity, the judge's wins, losses
// and ties, each gate's decision and the reasons), its role and lineage, usage; promote, rollback, archive.
import { api } from "../api.js";
import { h, mount, badge, num, usd, pct, when, shortId, hbars, meta, table, errorBox, toast, modelName } from "../dom.js";

function gateRows(gates, m, base) {
  if (!gates || !m) return [];
  const n = (m.benchmark_tasks || 0) + (m.validation_examples || 0);
  const rows = [
    ["Examples evaluated", num(n), `≥ ${gates.min_eval_examples}`, n >= gates.min_eval_examples],
    ["Benchmark score", num(m.score, 1), `≥ ${gates.min_score}`, m.score >= gates.min_score],
  ];
  if (m.teacher_similarity !== null && m.teacher_similarity !== undefined && gates.min_teacher_similarity > 0)
    rows.push(["Similarity to the teacher", num(m.teacher_similarity, 1), `≥ ${gates.min_teacher_similarity}`,
      m.teacher_similarity >= gates.min_teacher_similarity]);
  if (base) rows.push(["Regression against production", num(base.score - m.score, 1), `≤ ${gates.max_regression} points`,
    base.score - m.score <= gates.max_regression]);
  if (m.win_rate !== null && m.win_rate !== undefined)
    rows.push(["Judge win rate", pct(m.win_rate), `≥ ${pct(gates.min_win_rate)}`, m.win_rate >= gates.min_win_rate]);
  return rows;
}

function evaluation(model, job, domain) {
  const note = model.metrics?.evaluation;
  const ev = job?.evalMetrics || {};
  if (!note && !ev.decision) return h("p", { class: "muted" }, "This model has not been evaluated.");
  const m = ev.metrics, base = ev.baseline_metrics, judge = ev.judge;
  const categories = [...new Set([...Object.keys(m?.categories || note?.categories || {}), ...Object.keys(base?.categories || {})])];
  return h("div", {},
    h("p", { class: "decision" }, "Decision ", badge(ev.decision || note.decision), ` · evaluated ${when(ev.evaluated_at || note.at)}`,
      (ev.baseline || note?.baseline) ? [" · compared with production ", h("code", {}, shortId(ev.baseline || note.baseline))]
        : " · no production student to compare with (the teacher serves)"),
    h("div", { class: "kpis" },
      h("div", { class: "kpi" }, h("span", {}, "Student score"), h("b", {}, num(m?.score ?? note?.score, 1))),
      h("div", { class: "kpi" }, h("span", {}, "Production score"), h("b", {}, base ? num(base.score, 1) : "—")),
      h("div", { class: "kpi" }, h("span", {}, "Similarity to the teacher"), h("b", {}, num(m?.teacher_similarity ?? note?.teacherSimilarity, 1))),
      h("div", { class: "kpi" }, h("span", {}, "Benchmark tasks / held-out"), h("b", {}, `${num(m?.benchmark_tasks)} / ${num(m?.validation_examples)}`))),
    h("h3", {}, "Score per task category (0–100)"),
    categories.length ? hbars(categories.flatMap((c) => [{ label: `${c} · student`, value: (m?.categories || note?.categories || {})[c] },
      ...(base ? [{ label: `${c} · production`, value: base.categories?.[c], tone: "prod" }] : [])]), { max: 100 })
      : h("p", { class: "muted" }, "No per-category scores."),
    h("h3", {}, "Judge"),
    judge ? h("p", { class: "judge" }, `Against ${judge.opponent}: ${judge.wins} wins, ${judge.losses} losses, ${judge.ties} ties`,
      judge.invalid ? `, ${judge.invalid} without a verdict` : "", m?.win_rate !== null && m?.win_rate !== undefined ? ` (win rate ${pct(m.win_rate)})` : "")
      : h("p", { class: "muted" }, "No judge ran (set FORGE_GRADER_MODEL to enable one)."),
    h("h3", {}, "Gates"),
    domain ? table(["Gate", { text: "Measured", class: "num" }, "Needed", "Decision"],
      gateRows(domain.gates, m, base).map(([g, v, need, ok]) => h("tr", {}, h("td", {}, g), h("td", { class: "num" }, v),
        h("td", {}, need), h("td", {}, badge(ok ? "pass" : "fail")))), { "aria-label": "Gates (as the domain sets them now)" }) : null,
    h("h3", {}, "Reasons"), h("ul", { class: "reasons" }, (ev.reasons || note?.reasons || []).map((r) => h("li", {}, r))));
}

function usage(u, days) {
  if (!u || !u.requests) return h("p", { class: "muted" }, `No requests through the router in the last ${days} days.`);
  return h("div", {}, h("div", { class: "kpis" },
    h("div", { class: "kpi" }, h("span", {}, "Requests"), h("b", {}, num(u.requests))),
    h("div", { class: "kpi" }, h("span", {}, "Saving vs teacher"), h("b", {}, usd(u.savingUsd))),
    h("div", { class: "kpi" }, h("span", {}, "Projected monthly saving"), h("b", {}, usd(u.projectedMonthlySavingUsd)))),
  h("h3", {}, "Tokens"), hbars([{ label: "prompt", value: u.promptTokens }, { label: "completion", value: u.completionTokens }], { format: (v) => num(v) }),
  h("h3", {}, "Latency (ms)"), hbars([{ label: "p50", value: u.latencyP50Ms }, { label: "p95", value: u.latencyP95Ms, tone: "golden" }], { format: (v) => num(v) }),
  h("h3", {}, "Cost"), hbars([{ label: "this model", value: u.costUsd, tone: "prod" }, { label: "teacher, same tokens", value: u.teacherCostUsd, tone: "teacher" }], { format: usd }));
}

export async function render(root, ctx) {
  const id = ctx.params[0];
  const model = await api(`/api/v1/models/${id}`);
  const [job, domains] = await Promise.all([
    model.jobId ? api(`/api/v1/forge/jobs/${model.jobId}`).catch(() => null) : null,
    api("/api/v1/insights/domains")]);
  const domain = domains.items.find((d) => d.name === model.domain);
  const percent = h("input", { id: "canary-percent", type: "number", min: 1, max: 100, step: 1,
    value: domain?.routing?.canary_percent ?? 10 });
  const result = h("div", { "aria-live": "polite" });
  const act = (path, body, label) => async () => {
    try {
      const change = await api(`/api/v1/models/${id}/${path}`, { method: "POST", json: body });
      toast(`${label}: ${shortId(id)} is now ${change.model.stage}.`);
      render(root, ctx);
    } catch (err) { mount(result, errorBox(err)); }
  };
  const canServe = model.stage !== "production";
  mount(root,
    h("div", { class: "spread" }, h("h1", {}, `Model ${shortId(model.versionId)} · ${model.domain}`),
      h("span", {}, badge(model.stage), " ", model.role ? h("span", { class: "muted role" }, `role: ${model.role}`) : null)),
    h("section", { class: "panel", "aria-labelledby": "actions" }, h("h2", { id: "actions" }, "Registry"),
      h("div", { class: "row" },
        canServe ? [h("label", { for: "canary-percent" }, h("span", {}, "Canary %"), percent),
          h("button", { type: "button", onclick: () => act("promote", { stage: "candidate", canaryPercent: Number(percent.value) }, "Canary")() }, "Promote to canary"),
          h("button", { type: "button", class: "primary", onclick: act("promote", { stage: "production" }, "Promoted") }, "Promote to production")] : null,
        model.stage === "production" ? h("button", { type: "button", class: "danger", onclick: act("rollback", undefined, "Rolled back") }, "Roll back") : null,
        canServe && model.stage !== "archived" ? h("button", { type: "button", onclick: act("archive", undefined, "Archived") }, "Archive") : null),
      result),
    h("section", { class: "panel", "aria-labelledby": "evaluation" }, h("h2", { id: "evaluation" }, "Evaluation"), evaluation(model, job, domain)),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Lineage"), meta([["Base model", h("code", {}, modelName(model.lineage?.baseModel))],
        ["Provider model", model.providerModelId || "—"],
        ["Job", model.jobId ? h("a", { href: `#/jobs/${model.jobId}` }, shortId(model.jobId)) : "—"],
        ["Dataset", model.datasetId ? h("a", { href: `#/datasets/${model.datasetId}` }, shortId(model.datasetId)) : "—"],
        ["Dataset ancestors", (model.lineage?.datasetAncestors || []).map(shortId).join(" ← ") || "none"],
        ["Created", when(model.createdAt)]])),
      h("section", { class: "panel" }, h("h2", {}, `Usage (last ${model.usageWindowDays} days)`), usage(model.usage, model.usageWindowDays))));
}
