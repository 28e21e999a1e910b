// New run: domain → provider and base model → hyperparameters → review with the cost estimate → trigger.
// The settings are the API's (docs/jobs.md); the server validates them and says which key is wrong.
import { api, all } from "../api.js";
import { h, mount, num, usd, errorBox, modelName } from "../dom.js";

const PROVIDERS = [["", "server default (FORGE_PROVIDER)"], ["local", "local — LoRA on this machine"],
  ["azureml", "azureml — LoRA on a GPU cluster"], ["azure-openai", "azure-openai — hosted fine-tuning"],
  ["openai", "openai — hosted fine-tuning"]];
const LORA = new Set(["local", "azureml", ""]);
const HYPER = [
  ["n_epochs", "Epochs", "1–1000", "int", true], ["batch_size", "Batch size", "1–1024", "int", true],
  ["learning_rate_multiplier", "Learning-rate multiplier", "> 0–100", "float", true],
  ["learning_rate", "Learning rate (LoRA)", "> 0–1", "float"], ["lora_r", "LoRA rank", "1–1024", "int"],
  ["lora_alpha", "LoRA alpha", "> 0–4096", "float"], ["lora_dropout", "LoRA dropout", "0–<1", "float"],
  ["max_seq_length", "Max sequence length", "8–131072", "int"], ["max_steps", "Max steps", "≥ 1", "int"],
  ["eval_every", "Validate every (steps)", "≥ 1", "int"], ["save_every", "Checkpoint every (steps)", "≥ 1", "int"],
  ["threads", "CPU threads", "1–256", "int"]];
const SETTINGS = [["trigger_threshold", "New golden traces needed", "0–10,000,000; default FORGE_TRIGGER_THRESHOLD", "int"],
  ["max_examples", "Newest examples kept at most", "1–10,000,000; default all", "int"],
  ["valid_share", "Validation share", "0–0.5; default 0.1", "float"], ["seed", "Seed", "default 42", "int"],
  ["poll_interval_s", "Seconds between status polls", "0.1–3600; default 60", "float"]];
const STEPS = ["Domain", "Provider and base model", "Hyperparameters", "Review"];

function input(name, label, hint, kind) {
  const id = `w-${name}`;
  const el = h("input", { id, name, type: "number", step: kind === "int" ? 1 : "any", inputmode: "decimal",
    "aria-describedby": `${id}-hint` });
  return { name, kind, el, label: h("label", { for: id }, h("span", {}, label), el, h("small", { id: `${id}-hint` }, hint)) };
}

const read = (fields) => Object.fromEntries(fields.filter((f) => f.el.value !== "")
  .map((f) => [f.name, f.kind === "int" ? parseInt(f.el.value, 10) : Number(f.el.value)]));

export async function render(root, ctx) {
  const domains = (await api("/api/v1/insights/domains")).items;
  let step = 0;
  const domain = h("select", { id: "w-domain" }, domains.map((d) => h("option", { value: d.name }, d.name)));
  const describe = h("p", { class: "muted" });
  const showDomain = () => { describe.textContent = domains.find((d) => d.name === domain.value)?.description || ""; };
  domain.addEventListener("change", showDomain);
  showDomain();
  const provider = h("select", { id: "w-provider" }, PROVIDERS.map(([v, t]) => h("option", { value: v }, t)));
  const baseModel = h("input", { id: "w-base", type: "text", placeholder: "default: FORGE_STUDENT_BASE_MODEL",
    "aria-describedby": "w-base-hint", autocomplete: "off" });
  const hyper = HYPER.map(([n, l, hint, k, openai]) => ({ ...input(n, l, hint, k), openai }));
  const settings = SETTINGS.map(([n, l, hint, k]) => input(n, l, hint, k));
  const loraOnly = h("p", { class: "muted" });

  const panes = [
    h("fieldset", {}, h("legend", {}, "1. Domain"), h("label", { for: "w-domain" }, h("span", {}, "Domain"), domain), describe),
    h("fieldset", {}, h("legend", {}, "2. Provider and base model"),
      h("div", { class: "form-grid" }, h("label", { for: "w-provider" }, h("span", {}, "Provider"), provider),
        h("label", { for: "w-base" }, h("span", {}, "Base model"), baseModel)),
      h("p", { id: "w-base-hint", class: "muted" }, "A hosted model name or a Hugging Face hub id (org/name); leave it ",
        "empty for the server's default. Local folders are set by the operator. Only the providers in ",
        "FORGE_ALLOWED_PROVIDERS are accepted.")),
    h("fieldset", {}, h("legend", {}, "3. Hyperparameters and job settings"), loraOnly,
      h("div", { class: "form-grid" }, hyper.map((f) => f.label)),
      h("h3", {}, "Job"), h("div", { class: "form-grid" }, settings.map((f) => f.label))),
    h("fieldset", {}, h("legend", {}, "4. Review")),
  ];
  const indicator = h("ol", { class: "steps", "aria-label": "Steps" });
  const pane = h("div");
  const problem = h("div", { "aria-live": "assertive" });
  const back = h("button", { type: "button" }, "Back");
  const next = h("button", { type: "button", class: "primary" }, "Next");

  const body = () => {
    const hp = read(hyper.filter((f) => !f.el.disabled));
    const out = { domain: domain.value, settings: { ...read(settings), hyperparameters: hp } };
    if (provider.value) out.provider = provider.value;
    if (baseModel.value.trim()) out.settings.base_model = baseModel.value.trim();
    return out;
  };

  async function estimate(into, request) {
    mount(into, h("p", { class: "muted" }, "Estimating…"));
    try {
      const datasets = (await all("/api/v1/datasets", {}, 1000)).filter((d) => d.domain === request.domain);
      const latest = datasets[datasets.length - 1];
      const epochs = typeof request.settings.hyperparameters.n_epochs === "number" ? request.settings.hyperparameters.n_epochs : undefined;
      let query, basis;
      if (latest) {
        query = { datasetId: latest.datasetId };
        basis = `the domain's latest dataset (v${latest.version}, ${num(latest.counts.train)} train examples)`;
      } else {
        const traces = (await api("/api/v1/traces", { query: { domain: request.domain, limit: 200 } })).items;
        if (!traces.length) return mount(into, h("p", { class: "muted" }, "No traces or datasets in this domain yet: nothing to estimate from."));
        query = { examples: traces.map((t) => ({ messages: [...t.messages, t.response] })) };
        basis = `the domain's ${traces.length} oldest traces (the run trains on the golden ones)`;
      }
      const e = await api("/api/v1/forge/jobs/estimate-cost", { method: "POST",
        json: { ...query, model: request.settings.base_model, epochs } });
      mount(into, h("p", { class: "estimate" }, `From ${basis}: ${num(e.billedTokens)} billed tokens over ${e.epochs} epochs of `,
        h("code", {}, modelName(e.model)), ": ", e.cost === null ? "no price for this model (LoRA training bills no tokens)" : usd(e.cost),
        e.cost === null ? "" : ` at prices of ${e.pricesAsOf}.`));
    } catch (err) { mount(into, errorBox(err)); }
  }

  function show() {
    mount(indicator, STEPS.map((name, i) => h("li", { "aria-current": i === step ? "step" : null }, `${i + 1}. ${name}`)));
    const lora = LORA.has(provider.value);
    for (const f of hyper) {
      f.el.disabled = !f.openai && !lora;
      f.label.hidden = f.el.disabled;
    }
    loraOnly.textContent = lora ? "Every field is optional; an empty one keeps the provider's default."
      : "Hosted providers take only OpenAI's three hyperparameters.";
    if (step === 3) {
      const request = body();
      const estimateBox = h("div");
      mount(panes[3], h("legend", {}, "4. Review"), h("pre", { class: "review" }, JSON.stringify(request, null, 2)),
        h("h3", {}, "Cost estimate"), estimateBox);
      estimate(estimateBox, request);
    }
    mount(pane, panes[step]);
    back.disabled = step === 0;
    next.textContent = step === 3 ? "Start run" : "Next";
    panes[step].querySelector("legend")?.setAttribute("tabindex", "-1");
    panes[step].querySelector("legend")?.focus();
  }

  back.addEventListener("click", () => { step = Math.max(0, step - 1); mount(problem); show(); });
  next.addEventListener("click", async () => {
    if (step < 3) { step += 1; mount(problem); return show(); }
    next.disabled = true;
    try {
      const started = await api("/api/v1/forge/jobs/trigger", { method: "POST", json: body() });
      ctx.go(`#/jobs/${started.jobId}`);
    } catch (err) {
      mount(problem, errorBox(err), err.problem?.errors ? h("ul", {}, err.problem.errors.map((e) =>
        h("li", {}, h("code", {}, e.field), ": ", e.message))) : null);
      next.disabled = false;
    }
  });

  mount(root, h("h1", {}, "New distillation run"), indicator,
    h("form", { class: "panel", "aria-label": "New run", onsubmit: (e) => e.preventDefault() }, pane, problem,
      h("div", { class: "row" }, back, next)));
  show();
}
