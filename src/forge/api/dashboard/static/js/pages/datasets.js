// Datasets: drop a JSONL, CSV or JSON file — it is checked first (each problem by line, nothing stored), then
// uploaded; a dataset's page shows its stats, preview, rejects, lineage and a cost estimate per base model.
import { api, all } from "../api.js";
import { h, mount, num, usd, when, shortId, badge, hbars, meta, table, errorBox, toast, modelName } from "../dom.js";
import { barChart } from "../charts.js";
import { conversation } from "./traces.js";

const FORMATS = { jsonl: "jsonl", ndjson: "jsonl", csv: "csv", json: "json" };
const PRICED = ["gpt-4.1-nano-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4o-mini-2024-07-18", "gpt-4.1-2025-04-14"];

const counts = (c) => Object.entries(c || {}).sort((a, b) => b[1] - a[1]).map(([label, value]) => ({ label, value }));

function rejectsTable(items) {
  if (!items.length) return h("p", { class: "muted" }, "Nothing was dropped.");
  return table([{ text: "Line", class: "num" }, "Reason", "Detail"], items.map((r) =>
    h("tr", { class: "reject" }, h("td", { class: "num" }, r.line ?? (r.id ? shortId(r.id) : "—")),
      h("td", {}, h("code", {}, r.reason)), h("td", {}, r.detail))), { "aria-label": "Dropped lines" });
}

function estimateLine(e) {
  if (!e || !e.model) return "—";
  return `${num(e.billed_tokens ?? e.billedTokens)} tokens over ${e.epochs} epochs of ${modelName(e.model)}: ` +
    (e.cost === null || e.cost === undefined ? "no price in the table" : usd(e.cost));
}

function uploader(domains, onUploaded) {
  const domain = h("select", { id: "up-domain" }, domains.map((d) => h("option", { value: d }, d)));
  const validShare = h("input", { id: "up-valid", type: "number", min: 0, max: 0.5, step: 0.05, value: 0.1 });
  const file = h("input", { id: "up-file", type: "file", accept: ".jsonl,.ndjson,.csv,.json", class: "sr-only" });
  const zone = h("div", { class: "dropzone", role: "button", tabindex: 0, "aria-describedby": "drop-help" },
    h("b", {}, "Drop a dataset here"), h("div", { id: "drop-help", class: "muted" },
      "JSONL (OpenAI chat), CSV (prompt, response columns) or a JSON array — or press Enter to choose a file."));
  const report = h("div", { "aria-live": "polite" });
  let chosen = null;

  const pick = async (f) => {
    chosen = f;
    const fmt = FORMATS[f.name.split(".").pop().toLowerCase()];
    if (!fmt) return mount(report, errorBox(`${f.name}: give a .jsonl, .csv or .json file.`));
    mount(report, h("p", { class: "muted" }, `Checking ${f.name}…`));
    try {
      const checked = await api("/api/v1/datasets/check", { method: "POST", body: f,
        query: { format: fmt, domain: domain.value, valid_share: validShare.value },
        headers: { "Content-Type": "application/octet-stream" } });
      showCheck(f, fmt, checked);
    } catch (err) { mount(report, errorBox(err)); }
  };

  function showCheck(f, fmt, c) {
    const upload = h("button", { type: "button", class: "primary", disabled: !c.uploadable }, `Upload ${num(c.train + c.valid)} examples`);
    upload.addEventListener("click", async () => {
      upload.disabled = true;
      try {
        const made = await api("/api/v1/datasets", { method: "POST", body: f, query: { format: fmt, domain: domain.value,
          valid_share: validShare.value }, headers: { "Content-Type": "application/octet-stream" } });
        toast(`Dataset v${made.version} stored.`);
        onUploaded(made);
      } catch (err) { mount(report, errorBox(err)); }
    });
    mount(report, h("section", { class: "check-report", "aria-label": `Check of ${f.name}` },
      h("h3", {}, `${f.name}: `, h("span", { class: `badge ${c.uploadable ? "ok" : "bad"}` },
        c.uploadable ? "ready to upload" : "cannot be uploaded")),
      c.problem ? h("div", { class: "error-box" }, c.problem) : null,
      h("div", { class: "kpis" },
        ["read", "kept", "train", "valid"].map((k) => h("div", { class: "kpi" }, h("span", {}, k), h("b", {}, num(c.counts[k])))),
        h("div", { class: "kpi" }, h("span", {}, "dropped"), h("b", { class: "dropped-total" },
          num(Object.values(c.dropped).reduce((a, b) => a + b, 0))))),
      c.warnings.map((w) => h("div", { class: "alert" }, w)),
      h("p", {}, "Estimate: ", estimateLine(c.estimate)),
      h("h3", {}, `Problems by line (${c.rejectsShown} shown)`), rejectsTable(c.rejects),
      h("div", { class: "row" }, upload)));
  }

  file.addEventListener("change", () => file.files[0] && pick(file.files[0]));
  zone.addEventListener("click", () => file.click());
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); file.click(); } });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files[0]) pick(e.dataTransfer.files[0]);
  });
  domain.addEventListener("change", () => chosen && pick(chosen));
  return h("section", { class: "panel", "aria-labelledby": "up-title" }, h("h2", { id: "up-title" }, "Upload"),
    h("div", { class: "form-grid" },
      h("label", { for: "up-domain" }, h("span", {}, "Domain"), domain),
      h("label", { for: "up-valid" }, h("span", {}, "Validation share"), validShare)),
    h("p"), zone, h("label", { for: "up-file", class: "sr-only" }, "Dataset file"), file, report);
}

async function list(root, ctx) {
  const [datasets, domains] = await Promise.all([all("/api/v1/datasets", {}, 1000),
    api("/api/v1/insights/domains")]);
  const rows = datasets.slice().reverse().map((d) => h("tr", {},
    h("td", {}, h("a", { href: `#/datasets/${d.datasetId}` }, shortId(d.datasetId))),
    h("td", {}, d.domain), h("td", { class: "num" }, `v${d.version}`), h("td", {}, d.source),
    h("td", { class: "num" }, num(d.counts.train)), h("td", { class: "num" }, num(d.counts.valid)),
    h("td", { class: "num hide-narrow" }, num(Object.values(d.dropped || {}).reduce((a, b) => a + b, 0))),
    h("td", { class: "hide-narrow" }, when(d.createdAt))));
  mount(root, h("h1", {}, "Datasets"),
    uploader(domains.items.map((d) => d.name), (made) => ctx.go(`#/datasets/${made.datasetId}`)),
    h("section", { class: "panel" }, h("h2", {}, "All datasets"), rows.length ? table(["Dataset", "Domain",
      { text: "Version", class: "num" }, "Source", { text: "Train", class: "num" }, { text: "Valid", class: "num" },
      { text: "Dropped", class: "num hide-narrow" }, { text: "Created", class: "hide-narrow" }], rows)
      : h("p", { class: "muted" }, "No datasets yet: upload one, or run a job.")));
}

async function lineage(d) {
  const chain = [];
  let parent = d.parentId;
  while (parent && chain.length < 10) {
    try {
      const p = await api(`/api/v1/datasets/${parent}`);
      chain.push(p);
      parent = p.parentId;
    } catch { break; }
  }
  return h("ol", {}, h("li", {}, h("b", {}, `v${d.version} `), shortId(d.datasetId), " (this one)",
    d.jobId ? [" · built by ", h("a", { href: `#/jobs/${d.jobId}` }, `job ${shortId(d.jobId)}`)] : ""),
  chain.map((p) => h("li", {}, h("a", { href: `#/datasets/${p.datasetId}` }, `v${p.version} ${shortId(p.datasetId)}`),
    ` · ${p.source} · ${num(p.counts.train)} train`)));
}

async function estimates(d) {
  const models = [...new Set([d.estimate?.model, ...PRICED].filter(Boolean))];
  const rows = await Promise.all(models.map(async (model) => {
    try {
      const e = await api("/api/v1/forge/jobs/estimate-cost", { method: "POST", json: { datasetId: d.datasetId, model } });
      return h("tr", {}, h("td", {}, h("code", {}, modelName(model))), h("td", { class: "num" }, num(e.billedTokens)),
        h("td", { class: "num" }, e.epochs), h("td", { class: "num" }, e.cost === null ? "no price" : usd(e.cost)));
    } catch (err) { return h("tr", {}, h("td", {}, model), h("td", { colspan: 3 }, err.message)); }
  }));
  return table(["Base model", { text: "Billed tokens", class: "num" }, { text: "Epochs", class: "num" },
    { text: "Cost", class: "num" }], rows, { "aria-label": "Cost estimate per base model" });
}

async function detail(root, ctx, id) {
  const [d, rejects] = await Promise.all([api(`/api/v1/datasets/${id}`), api(`/api/v1/datasets/${id}/rejects`)]);
  const tokens = d.stats?.tokens || d.tokenStats || {};
  const histogram = tokens.histogram || {};
  const header = h("div", { class: "spread" }, h("h1", {}, `Dataset v${d.version} · ${d.domain}`),
    h("span", { class: "mono" }, d.datasetId));
  const del = h("button", { type: "button", class: "danger" }, "Delete");
  del.addEventListener("click", async () => {
    await api(`/api/v1/datasets/${id}`, { method: "DELETE" });
    toast("Dataset deleted (its files stay for the models trained on it).");
    ctx.go("#/datasets");
  });
  mount(root, header,
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Record"), meta([["Source", d.source], ["Created", when(d.createdAt)],
        ["SHA-256", h("code", {}, (d.sha256 || "").slice(0, 16))], ["Read", num(d.counts.read)], ["Kept", num(d.counts.kept)],
        ["Train / valid", `${num(d.counts.train)} / ${num(d.counts.valid)}`], ["Estimate", estimateLine(d.estimate)]]),
        d.warnings?.length ? d.warnings.map((w) => h("div", { class: "alert" }, w)) : null, h("p"), del),
      h("section", { class: "panel" }, h("h2", {}, "Kept and dropped by reason"),
        hbars([{ label: "kept", value: d.counts.kept, tone: "prod" }, ...counts(d.dropped).map((x) => ({ ...x, tone: "bad" }))],
          { format: (v) => num(v) }),
        h("h3", {}, "PII found, by kind"), Object.keys(d.pii || {}).length ? hbars(counts(d.pii), { format: (v) => num(v) })
          : h("p", { class: "muted" }, "None found."))),
    h("section", { class: "panel" }, h("h2", {}, "Tokens per example"),
      h("p", { class: "muted" }, `mean ${num(tokens.mean, 1)} · p50 ≤ ${num(tokens.p50_at_most)} · p95 ≤ ${num(tokens.p95_at_most)} · max ${num(tokens.max)}`),
      barChart(Object.keys(histogram), [{ key: "traces", name: "Examples", values: Object.values(histogram) }],
        { label: "Token histogram" })),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Lineage"), await lineage(d)),
      h("section", { class: "panel" }, h("h2", {}, "Cost estimate per base model"), await estimates(d))),
    h("section", { class: "panel" }, h("h2", {}, "Preview"), (d.preview || []).map((ex, i) =>
      h("details", { open: i === 0 }, h("summary", {}, `Example ${i + 1}`), conversation(ex.messages || [], null, ex.tools)))),
    h("section", { class: "panel" }, h("h2", {}, `Dropped examples (${rejects.items.length} shown)`), rejectsTable(rejects.items)));
}

export async function render(root, ctx) {
  return ctx.params[0] ? detail(root, ctx, ctx.params[0]) : list(root, ctx);
}
