// One domain's canary: status, candidate, stage and control; the latest decision's reasons and numbers; the shadow
// report per stage; the decision history; and a person's say (pin, pause, resume, skip — skip confirmed first).
// `?candidate=ID` reads an earlier candidate's report. Below, the production student's drift checks: fallbacks,
// judged quality and how the inputs moved from its training set, with their alerts. Refreshes every 10 s.
import { api } from "../api.js";
import { h, mount, badge, num, pct, when, shortId, table, errorBox, toast } from "../dom.js";

const fixed = (n, digits = 3) => n === null || n === undefined ? "—" : Number(n).toFixed(digits);
const ms = (n) => n === null || n === undefined ? "—" : `${num(n, 1)} ms`;
const perRequest = (n) => n === null || n === undefined ? "—" : `$${Number(n).toFixed(6)}`;
const share = (n) => n === null || n === undefined ? "—" : `${(n * 100).toFixed(1)}%`;
const rate = (mean, lower, upper) => mean === null || mean === undefined ? "—"
  : `${fixed(mean)} [${fixed(lower)}, ${fixed(upper)}]`;

function stageName(policy, stage) {
  const percent = policy.stages[stage]?.percent;
  return percent === undefined ? String(stage) : `${stage} (${percent === 0 ? "shadow, 0%" : `${num(percent, 1)}%`})`;
}

function latestNumbers(decisions) {
  return [...decisions].reverse().find((d) => d.numbers && d.numbers.candidate) || null;
}

function numbersTable(d) {
  if (!d) return h("p", { class: "muted" }, "No decision has measured anything yet.");
  const n = d.numbers, c = n.candidate, p = n.production;
  const row = (label, f, key) => h("tr", {}, h("th", { scope: "row" }, label), h("td", { class: "num" }, f(c[key])),
    h("td", { class: "num" }, f(p[key])));
  return h("div", {},
    h("p", {}, `As of ${when(d.at)} (stage ${d.stage}): win rate `, h("b", { class: "win-rate" },
      rate(n.winRate, n.winRateLower, n.winRateUpper)), ` at ${Math.round((n.confidence || 0) * 100)}% on `,
    h("b", {}, num(n.judged)), " judged pairs."),
    table(["", { text: "Candidate", class: "num" }, { text: "Production", class: "num" }], [
      row("Requests", num, "requests"), row("Error rate", share, "errorRate"), row("p95 latency", ms, "p95LatencyMs"),
      row("Cost per request", perRequest, "costPerRequestUsd")], { "aria-label": "Latest numbers per arm" }));
}

function stagesTable(report) {
  if (!report.judged.length) return h("p", { class: "muted" }, "Nothing judged or measured yet.");
  return table(["Stage", { text: "Judged pairs", class: "num" }, { text: "Wins / ties / losses", class: "num" },
    { text: "Win rate [bounds]", class: "num" }, { text: "Similarity", class: "num" },
    { text: "p95 candidate", class: "num" }, { text: "p95 production", class: "num" },
    { text: "$/request candidate", class: "num" }, { text: "$/request production", class: "num" }],
  report.judged.map((s) => h("tr", {}, h("td", {}, stageName(report.policy, s.stage)),
    h("td", { class: "num" }, num(s.judged)), h("td", { class: "num" }, `${s.wins} / ${s.ties} / ${s.losses}`),
    h("td", { class: "num" }, s.winRate ? rate(s.winRate.mean, s.winRate.lower, s.winRate.upper) : "—"),
    h("td", { class: "num" }, num(s.meanSimilarity, 1)),
    h("td", { class: "num" }, ms(s.candidate.p95LatencyMs)), h("td", { class: "num" }, ms(s.production.p95LatencyMs)),
    h("td", { class: "num" }, perRequest(s.candidate.costPerRequestUsd)),
    h("td", { class: "num" }, perRequest(s.production.costPerRequestUsd)))), { "aria-label": "Shadow report per stage" });
}

function history(decisions) {
  if (!decisions.length) return h("p", { class: "muted" }, "No decisions yet.");
  return table(["When", "Action", { text: "Stage", class: "num" }, "Reasons"], [...decisions].reverse().map((d) =>
    h("tr", {}, h("td", {}, when(d.at)), h("td", {}, badge(d.action)), h("td", { class: "num" }, d.stage),
      h("td", {}, (d.reasons || []).join("; ")))), { "aria-label": "Decision history" });
}

function driftPanel(found) {
  const checks = found.checks || [];
  const latest = found.latest;
  const m = latest?.measures || {};
  const lang = (l) => Object.entries(l || {}).slice(0, 3).map(([k, v]) => `${k} ${pct(v)}`).join(", ") || "—";
  return h("section", { class: "panel", "aria-labelledby": "drift-head" },
    h("h2", { id: "drift-head" }, "Drift of the production student"),
    !latest ? h("p", { class: "muted" }, `No checks yet: the control loop checks every ${num(found.policy.check_minutes)} min.`)
      : [h("p", {}, `Last checked ${when(latest.at)} on ${latest.model ? shortId(latest.model) : "the teacher"}: `,
        latest.alerts.length ? badge("alert") : badge("ok"), latest.note ? ` ${latest.note}` : null),
      latest.alerts.length ? h("ul", { class: "reasons drift-alerts" }, latest.alerts.map((a) => h("li", {}, a))) : null,
      h("div", { class: "kpis" },
        h("div", { class: "kpi" }, h("span", {}, "Student calls"), h("b", {}, num(m.requests))),
        h("div", { class: "kpi" }, h("span", {}, "To the teacher"), h("b", { class: "drift-fallbacks" }, share(m.fallback_share))),
        h("div", { class: "kpi" }, h("span", {}, "Win rate vs teacher"), h("b", {}, m.win_rate
          ? rate(m.win_rate.mean, m.win_rate.lower, m.win_rate.upper) : "—")),
        h("div", { class: "kpi" }, h("span", {}, "Length shift"), h("b", {}, pct(m.length_shift))),
        h("div", { class: "kpi" }, h("span", {}, "Languages now"), h("b", { class: "drift-languages" }, lang(m.traffic?.languages))),
        h("div", { class: "kpi" }, h("span", {}, "New phrases"), h("b", {}, pct(m.ngram_novelty)))),
      m.new_ngrams?.length ? h("p", { class: "muted" }, `Phrases training never saw: ${m.new_ngrams.join(", ")}`) : null],
    checks.length ? table(["When", { text: "Calls", class: "num" }, { text: "To teacher", class: "num" },
      { text: "Win rate", class: "num" }, { text: "Length", class: "num" }, { text: "Language", class: "num" },
      { text: "New phrases", class: "num" }, "Alerts"],
    [...checks].reverse().slice(0, 24).map((c) => {
      const x = c.measures || {};
      return h("tr", {}, h("td", {}, when(c.at)), h("td", { class: "num" }, num(x.requests)),
        h("td", { class: "num" }, share(x.fallback_share)), h("td", { class: "num" }, fixed(x.win_rate?.mean)),
        h("td", { class: "num" }, pct(x.length_shift)), h("td", { class: "num" }, fixed(x.language_shift, 2)),
        h("td", { class: "num" }, pct(x.ngram_novelty)),
        h("td", {}, c.alerts.length ? `${c.alerts.length}: ${c.alerts.map((a) => a.split(":")[0]).join(", ")}`
          : (c.note || "none")));
    }), { "aria-label": "Drift checks" }) : null);
}

export async function render(root, ctx) {
  const domain = ctx.params[0];
  const earlier = ctx.query.get("candidate");
  const body = h("div");
  const problem = h("div", { "aria-live": "assertive" });
  const controls = h("div", { class: "row" });

  const control = async (action) => {
    try {
      const state = await api(`/api/v1/canary/${domain}/control`, { method: "POST", json: { action } });
      mount(problem);
      toast(`${action}: stage ${state.stage}, ${state.control}.`);
    } catch (err) { mount(problem, errorBox(err)); }
    await draw();
  };

  let confirming = false;  // a refresh must not take the confirmation away while a person reads it
  const drawControls = (report) => {
    const { state, policy } = report;
    const next = state.stage + 1 < policy.stages.length ? `stage ${stageName(policy, state.stage + 1)}` : "production";
    const button = (label, action, attrs = {}) => h("button", { type: "button", ...attrs, onclick: () => {
      confirming = false;
      return control(action);
    } }, label);
    const cancel = () => { confirming = false; drawControls(report); };
    const ask = () => {
      confirming = true;
      mount(controls, h("span", { class: "confirm" },
        `Skip stage ${stageName(policy, state.stage)} and move the candidate to ${next} now?`),
      button("Confirm skip", "skip", { class: "danger" }), h("button", { type: "button", onclick: cancel }, "Cancel"));
      controls.querySelector("button").focus();
    };
    if (confirming) return;
    mount(controls, button("Pin", "pin"), button("Pause", "pause"), button("Resume", "resume"),
      h("button", { type: "button", class: "danger", onclick: ask }, "Skip stage"));
  };

  const draw = async () => {
    const [report, drift] = await Promise.all([api(`/api/v1/canary/${domain}`, { query: { candidate: earlier } }),
      api(`/api/v1/drift/${domain}`, { query: { days: 7 } })]);
    if (!ctx.alive()) return;
    const { state, policy } = report;
    const current = report.current || !earlier;
    const decisions = report.decisions || [];
    const latest = report.latest;
    mount(body,
      current ? null : h("p", { class: "alert" }, `An earlier candidate: ${report.candidate}. The domain's canary is now `,
        state.candidate ? h("a", { href: `#/canary/${domain}` }, shortId(state.candidate)) : "none", "."),
      h("section", { class: "panel", "aria-labelledby": "canary-state" }, h("h2", { id: "canary-state" }, "State"),
        h("div", { class: "kpis" },
          h("div", { class: "kpi" }, h("span", {}, "Status"), h("b", { class: "canary-status" },
            current ? state.status : "earlier")),
          h("div", { class: "kpi" }, h("span", {}, "Candidate"), h("b", { class: "canary-candidate" }, report.candidate
            ? h("a", { href: `#/models/${report.candidate}`, title: report.candidate }, shortId(report.candidate)) : "none")),
          h("div", { class: "kpi" }, h("span", {}, "Production"), h("b", {}, state.production
            ? h("a", { href: `#/models/${state.production}` }, shortId(state.production)) : "teacher")),
          current ? [
            h("div", { class: "kpi" }, h("span", {}, "Stage"), h("b", { class: "canary-stage" }, stageName(policy, state.stage))),
            h("div", { class: "kpi" }, h("span", {}, "Control"), h("b", { class: "canary-control" }, state.control))] : null),
        current ? [controls, problem] : null),
      h("section", { class: "panel", "aria-labelledby": "canary-latest" }, h("h2", { id: "canary-latest" }, "Latest decision"),
        latest ? h("p", {}, badge(latest.action), ` stage ${latest.stage} · ${when(latest.at)}`) : null,
        latest ? h("ul", { class: "reasons" }, (latest.reasons || []).map((r) => h("li", {}, r))) : null,
        numbersTable(latestNumbers(decisions))),
      h("section", { class: "panel", "aria-labelledby": "canary-stages" }, h("h2", { id: "canary-stages" }, "Shadow report per stage"),
        stagesTable(report)),
      h("section", { class: "panel", "aria-labelledby": "canary-history" }, h("h2", { id: "canary-history" }, "Decisions"),
        history(decisions)),
      driftPanel(drift));
    if (current) drawControls(report);
  };

  mount(root, h("div", { class: "spread" }, h("h1", {}, `Canary · ${domain}`),
    h("span", { class: "muted" }, "Updates every 10 s")), body);
  await draw();
  ctx.every(10000, draw);
}
