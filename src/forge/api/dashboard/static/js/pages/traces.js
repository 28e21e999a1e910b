// Traces: filter, read a conversation (tool calls included), approve / reject / score — fast, by keyboard:
// j/k next/previous, a approve, r reject, 1–9 score 10–90, 0 score 100; bulk actions on the current filter.
import { api, all } from "../api.js";
import { h, mount, badge, num, when, shortId, errorBox, toast, progressBar } from "../dom.js";

const text = (content) => typeof content === "string" ? content
  : Array.isArray(content) ? content.map((p) => p.text ?? (p.type ? `[${p.type}]` : "")).join("\n") : content == null ? "" : JSON.stringify(content);

function pretty(args) {
  try { return JSON.stringify(JSON.parse(args), null, 2); } catch { return String(args ?? ""); }
}

function message(m, extra = "") {
  const calls = (m.tool_calls || []).map((c) => h("div", { class: "tool-call" },
    h("div", {}, h("b", {}, "Tool call "), h("code", {}, c.function?.name || c.type), c.id ? h("span", { class: "muted" }, ` (${c.id})`) : null),
    h("pre", {}, pretty(c.function?.arguments))));
  return h("div", { class: `msg ${m.role} ${extra}` },
    h("div", { class: "role" }, m.role, m.name ? ` · ${m.name}` : "", m.tool_call_id ? ` · result of ${m.tool_call_id}` : "",
      extra === "answer" ? " · answer" : ""),
    text(m.content) ? h("pre", {}, text(m.content)) : null, calls);
}

export function conversation(messages, response, tools) {
  return h("div", {},
    tools?.length ? h("details", {}, h("summary", {}, `${tools.length} tools offered`),
      tools.map((t) => h("pre", {}, JSON.stringify(t, null, 2)))) : null,
    messages.map((m) => message(m)), response ? message(response, "answer") : null);
}

function firstUser(t) {
  const m = t.messages.find((x) => x.role === "user");
  return (m ? text(m.content) : "").slice(0, 90);
}

export async function render(root, ctx) {
  const domainNames = (await api("/api/v1/insights/domains")).items.map((d) => d.name);
  const q = ctx.query;
  const f = {
    domain: h("select", { id: "f-domain" }, h("option", { value: "" }, "all domains"),
      domainNames.map((d) => h("option", { value: d, selected: q.get("domain") === d }, d))),
    since: h("input", { id: "f-since", type: "date", value: q.get("since") || "" }),
    until: h("input", { id: "f-until", type: "date", value: q.get("until") || "" }),
    feedback: h("select", { id: "f-feedback" }, ["any", "approved", "rejected", "none"].map((v) =>
      h("option", { value: v, selected: (q.get("feedback") || "any") === v }, v))),
    minScore: h("input", { id: "f-min", type: "number", min: 0, max: 100, step: 1, value: q.get("min") || "", inputmode: "numeric" }),
    maxScore: h("input", { id: "f-max", type: "number", min: 0, max: 100, step: 1, value: q.get("max") || "", inputmode: "numeric" }),
    source: h("select", { id: "f-source" }, ["any", "router", "import", "api"].map((v) =>
      h("option", { value: v, selected: (q.get("source") || "any") === v }, v))),
    model: h("input", { id: "f-model", type: "search", value: q.get("model") || "", placeholder: "contains…" }),
  };
  const field = (id, label, input) => h("label", { for: id }, h("span", {}, label), input);
  const form = h("form", { class: "panel", "aria-label": "Filter traces" },
    h("div", { class: "form-grid" },
      field("f-domain", "Domain", f.domain), field("f-since", "From (UTC)", f.since), field("f-until", "Until (UTC)", f.until),
      field("f-feedback", "Feedback", f.feedback), field("f-min", "Score at least", f.minScore),
      field("f-max", "Score at most", f.maxScore), field("f-source", "Route (source)", f.source),
      field("f-model", "Model", f.model)));
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const bulk = h("div", { class: "row" });
  const list = h("div", { class: "trace-list panel" });
  const reader = h("section", { class: "panel", "aria-label": "Trace", "aria-live": "polite" });
  let traces = [], shown = [], index = -1;

  const matches = (t) => {
    const fb = f.feedback.value, lo = f.minScore.value, hi = f.maxScore.value;
    if (fb === "none" ? t.feedback : fb !== "any" && t.feedback !== fb) return false;
    if (lo !== "" && !(t.score !== null && t.score >= Number(lo))) return false;
    if (hi !== "" && !(t.score !== null && t.score <= Number(hi))) return false;
    if (f.source.value !== "any" && t.source !== f.source.value) return false;
    if (f.model.value && !(t.model || "").toLowerCase().includes(f.model.value.toLowerCase())) return false;
    return true;
  };

  function row(t, i) {
    return h("tr", { id: `trace-${t.id}`, "data-id": t.id, "aria-selected": String(i === index), tabindex: -1,
      onclick: () => select(i) },
      h("td", {}, when(t.createdAt).slice(0, 18), h("div", { class: "muted" }, t.domain)),
      h("td", {}, firstUser(t)),
      h("td", { class: "num" }, num(t.score)),
      h("td", {}, t.feedback ? badge(t.feedback) : h("span", { class: "muted" }, "—")));
  }

  function drawList() {
    mount(list, shown.length ? h("table", { "aria-label": "Traces (j/k to move)" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Prompt"),
        h("th", { scope: "col", class: "num" }, "Score"), h("th", { scope: "col" }, "Feedback"))),
      h("tbody", {}, shown.map(row))) : h("p", { class: "muted" }, "No traces match this filter."));
    status.textContent = `${shown.length} of ${traces.length} loaded traces match.`;
    mount(bulk, shown.length ? [bulkButton("approved", "Approve"), bulkButton("rejected", "Reject")] : []);
  }

  function bulkButton(feedback, verb) {
    const button = h("button", { type: "button" }, `${verb} all ${shown.length} shown`);
    button.addEventListener("click", () => {
      const targets = [...shown];
      const bar = h("span");
      mount(bulk, h("span", {}, `${verb} ${targets.length} traces?`),
        h("button", { type: "button", class: feedback === "rejected" ? "danger" : "primary", onclick: async () => {
          let done = 0;
          mount(bulk, h("span", {}, `${verb}…`), bar);
          for (const t of targets) {
            try { Object.assign(t, await api(`/api/v1/traces/${t.id}/feedback`, { method: "PATCH", json: { feedback } })); }
            catch (err) { toast(`${shortId(t.id)}: ${err.message}`, "bad"); }
            done += 1;
            mount(bar, progressBar(done / targets.length, `${verb} progress`));
          }
          toast(`${verb === "Approve" ? "Approved" : "Rejected"} ${done} traces.`);
          apply();
        } }, "Confirm"),
        h("button", { type: "button", onclick: drawList }, "Cancel"));
    });
    return button;
  }

  function drawReader() {
    const t = shown[index];
    if (!t) return mount(reader, h("p", { class: "muted" }, "Select a trace (click, or press j)."));
    const scoreInput = h("input", { id: "score", type: "number", min: 0, max: 100, step: 1, value: t.score ?? "" });
    mount(reader,
      h("div", { class: "spread" }, h("h2", {}, `Trace ${shortId(t.id)}`),
        h("span", {}, t.feedback ? badge(t.feedback) : badge("unreviewed"), " ", h("span", { class: "trace-score" }, `score ${num(t.score)}`))),
      h("div", { class: "row" },
        h("button", { type: "button", class: "primary", onclick: () => judge({ feedback: "approved" }) }, "Approve (a)"),
        h("button", { type: "button", class: "danger", onclick: () => judge({ feedback: "rejected" }) }, "Reject (r)"),
        h("label", { for: "score" }, h("span", { class: "sr-only" }, "Score 0 to 100"), scoreInput),
        h("button", { type: "button", onclick: () => scoreInput.value !== "" && judge({ score: Number(scoreInput.value) }) }, "Set score")),
      h("p", { class: "keys" }, h("kbd", {}, "j"), "/", h("kbd", {}, "k"), " next/previous · ", h("kbd", {}, "a"),
        " approve · ", h("kbd", {}, "r"), " reject · ", h("kbd", {}, "1"), "–", h("kbd", {}, "9"), " score 10–90 · ",
        h("kbd", {}, "0"), " score 100"),
      h("details", {}, h("summary", {}, "Details"), h("pre", {}, JSON.stringify({ id: t.id, domain: t.domain,
        model: t.model, source: t.source, createdAt: t.createdAt, promptTokens: t.promptTokens,
        completionTokens: t.completionTokens, latencyMs: t.latencyMs, conversationId: t.conversationId,
        user: t.user, metadata: t.metadata }, null, 2))),
      conversation(t.messages, t.response, t.tools));
  }

  function select(i) {
    if (!shown.length) return;
    index = Math.max(0, Math.min(shown.length - 1, i));
    for (const tr of list.querySelectorAll("tr[data-id]")) tr.setAttribute("aria-selected", String(tr.dataset.id === shown[index].id));
    list.querySelector(`tr[data-id="${shown[index].id}"]`)?.scrollIntoView({ block: "nearest" });
    drawReader();
  }

  async function judge(change) {
    const t = shown[index];
    if (!t) return;
    try {
      Object.assign(t, await api(`/api/v1/traces/${t.id}/feedback`, { method: "PATCH", json: change }));
      toast(change.feedback ? `Trace ${shortId(t.id)} ${change.feedback}.` : `Trace ${shortId(t.id)} scored ${change.score}.`);
      const tr = list.querySelector(`tr[data-id="${t.id}"]`);
      if (tr) tr.replaceWith(row(t, index));
      if (change.feedback && index < shown.length - 1) select(index + 1); else drawReader();
    } catch (err) {
      toast(err.message, "bad");
    }
  }

  function apply() {
    const current = shown[index]?.id;
    shown = traces.filter(matches);
    index = Math.max(0, shown.findIndex((t) => t.id === current));
    if (!shown.length) index = -1;
    drawList();
    drawReader();
  }

  async function load() {
    status.textContent = "Loading…";
    const since = f.since.value ? `${f.since.value}T00:00:00Z` : null;
    const until = f.until.value ? `${f.until.value}T23:59:59Z` : null;
    try {
      traces = (await all("/api/v1/traces", { domain: f.domain.value, since, until }, 1000)).reverse();  // newest first
    } catch (err) {
      mount(list, errorBox(err));
      return;
    }
    apply();
  }

  form.addEventListener("change", (event) => {
    const params = new URLSearchParams({ domain: f.domain.value, since: f.since.value, until: f.until.value,
      feedback: f.feedback.value, min: f.minScore.value, max: f.maxScore.value, source: f.source.value, model: f.model.value });
    for (const [k, v] of [...params]) if (!v || v === "any") params.delete(k);
    history.replaceState(null, "", `#/traces${params.size ? "?" + params : ""}`);
    if (["f-domain", "f-since", "f-until"].includes(event.target.id)) load(); else apply();
  });
  form.addEventListener("submit", (e) => e.preventDefault());

  const keys = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, select, textarea")) return;
    const k = event.key;
    if (k === "j") select(index + 1);
    else if (k === "k") select(index - 1);
    else if (k === "a") judge({ feedback: "approved" });
    else if (k === "r") judge({ feedback: "rejected" });
    else if (/^[0-9]$/.test(k)) judge({ score: k === "0" ? 100 : Number(k) * 10 });
    else return;
    event.preventDefault();
  };
  document.addEventListener("keydown", keys);
  ctx.onLeave(() => document.removeEventListener("keydown", keys));

  mount(root, h("h1", {}, "Traces"), form, h("div", { class: "spread" }, status, bulk),
    h("div", { class: "split" }, list, reader));
  await load();
}
