// One job: the stage timeline, the live loss curve (train and validation, from the job's events), events, cost,
// the evaluation, cancel and sync. Polls every second until the job has finished.
import { api, all } from "../api.js";
import { h, mount, badge, num, usd, when, duration, shortId, progressBar, meta, errorBox, toast, modelName } from "../dom.js";
import { lineChart } from "../charts.js";
import { FINISHED, STAGES, fraction } from "./jobs.js";

const LEVEL = { error: "bad", warning: "warn" };

function timeline(job) {
  const times = { COLLECTING: job.createdAt, ...(job.stageTimes || {}) };
  const order = [...STAGES, job.status && FINISHED.has(job.status) ? job.status : "COMPLETED"];
  return h("ol", { class: "timeline", "aria-label": "Stage timeline" }, order.map((stage, i) => {
    const at = times[stage];
    const next = order.slice(i + 1).map((x) => times[x]).find(Boolean);
    const state = job.status === stage ? (stage === "FAILED" ? "failed" : FINISHED.has(stage) ? "done" : "now")
      : at ? "done" : "";
    return h("li", { class: state, "aria-current": job.status === stage ? "step" : null },
      h("b", {}, stage), at ? when(at).slice(12) : h("span", { class: "muted" }, "—"),
      at && next ? h("div", { class: "muted" }, duration(at, next)) : null);
  }));
}

function lossSeries(events) {
  const train = [], valid = [];
  for (const e of events) {
    if (e.type !== "training.metrics") continue;
    const step = e.data.step ?? e.seq;
    const loss = e.data.loss ?? e.data.train_loss;
    const v = e.data.valid_loss ?? e.data.full_valid_loss;
    if (typeof loss === "number") train.push([step, loss]);
    if (typeof v === "number") valid.push([step, v]);
  }
  return [{ key: "train", name: "Training loss", points: train }, { key: "valid", name: "Validation loss", points: valid }];
}

function evaluation(job) {
  const ev = job.evalMetrics || {};
  if (!ev.decision) return h("p", { class: "muted" }, "Not evaluated yet.");
  const m = ev.metrics || {};
  return h("div", {},
    h("p", {}, "Decision ", badge(ev.decision), m.score !== undefined ? ` · score ${num(m.score, 1)}` : "",
      m.win_rate !== null && m.win_rate !== undefined ? ` · win rate ${num(m.win_rate * 100)}%` : "",
      ev.baseline ? ` · against ${shortId(ev.baseline)}` : ""),
    h("ul", {}, (ev.reasons || []).map((r) => h("li", {}, r))),
    ev.model_version_id ? h("a", { class: "button", href: `#/models/${ev.model_version_id}` }, "Open the evaluation") : null);
}

export async function render(root, ctx) {
  const id = ctx.params[0];
  let events = [], job = null;
  const head = h("div"), time = h("div"), chart = h("div"), eventsBox = h("div", { class: "events" }),
    side = h("div"), evalBox = h("div");
  const actions = h("div", { class: "row" });
  const act = (name) => async () => {
    try {
      job = await api(`/api/v1/forge/jobs/${id}/${name}`, { method: "POST" });
      toast(name === "cancel" ? "Cancel requested." : "Sync requested.");
      draw();
    } catch (err) { toast(err.message, "bad"); }
  };
  const cancel = h("button", { type: "button", class: "danger", onclick: act("cancel") }, "Cancel");
  const sync = h("button", { type: "button", onclick: act("sync") }, "Sync");
  actions.append(cancel, sync);

  function draw() {
    const done = FINISHED.has(job.status);
    cancel.disabled = sync.disabled = done;
    mount(head, h("div", { class: "spread" }, h("h1", {}, `Job ${shortId(job.jobId)} · ${job.domain}`), actions),
      h("div", { class: "row" }, badge(job.status), h("span", { class: "job-status sr-only" }, job.status),
        progressBar(fraction(job), "Job progress"), job.training?.loss !== undefined && job.training?.loss !== null
          ? h("span", { class: "mono" }, `loss ${num(job.training.loss, 4)}`) : null),
      job.error ? h("div", { class: "error-box" }, job.error) : null,
      job.reason ? h("div", { class: "alert" }, job.reason) : null);
    mount(time, timeline(job));
    mount(chart, lineChart(lossSeries(events), { label: "Loss by step: training and validation", xLabel: "step" }));
    mount(eventsBox, h("ul", {}, events.slice().reverse().map((e) => h("li", {},
      h("span", { class: `badge ${LEVEL[e.level] || "idle"}` }, e.type), " ", h("span", { class: "muted" }, when(e.time).slice(12)),
      " ", e.message))));
    const cost = job.cost?.estimate || {};
    mount(side, meta([["Provider", job.provider], ["Trigger", job.trigger], ["Created", when(job.createdAt)],
      ["Dataset", job.datasetId ? h("a", { href: `#/datasets/${job.datasetId}` }, shortId(job.datasetId)) : "—"],
      ["Examples", num(job.datasetSize)], ["New golden traces", num(job.goldenNew)],
      ["Trained tokens", num(job.training?.trained_tokens)],
      ["Cost estimate", cost.model ? `${cost.cost === null ? "no price for" : usd(cost.cost) + " on"} ${modelName(cost.model)}` : "—"],
      ["Billed tokens", cost.model ? `${num(cost.billed_tokens)} over ${cost.epochs} epochs` : "—"], ["Model", job.resultingModelId
        ? h("a", { href: `#/models/${job.resultingModelId}` }, shortId(job.resultingModelId)) : "—"],
      ["Promotion", job.promotion?.outcome ? badge(job.promotion.outcome) : "—"],
      ["Settings", h("details", {}, h("summary", {}, "as set"), h("pre", {}, JSON.stringify(job.settings, null, 2)))]]));
    mount(evalBox, evaluation(job));
  }

  async function refresh() {
    const after = events.length ? events[events.length - 1].seq : 0;
    const [fresh, newer] = await Promise.all([api(`/api/v1/forge/jobs/${id}`), all(`/api/v1/forge/jobs/${id}/events`, { after }, 5000)]);
    job = fresh;
    events = events.concat(newer);
    if (ctx.alive()) draw();
  }

  try { await refresh(); } catch (err) { return mount(root, h("h1", {}, "Job"), errorBox(err)); }
  mount(root, head,
    h("section", { class: "panel" }, h("h2", {}, "Stages"), time),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Loss"), chart),
      h("section", { class: "panel" }, h("h2", {}, "Run"), side)),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Evaluation"), evalBox),
      h("section", { class: "panel" }, h("h2", {}, "Events"), eventsBox)));
  let tail = 2;  // after it finishes, read once or twice more: its last events land just after its status
  const poll = async () => { if (!FINISHED.has(job.status) || tail-- > 0) await refresh(); };
  ctx.every(1000, poll);
}
