// Overview: per domain, traces and golden traces per day, requests per day by route, who serves, the last job,
// the saving against the teacher and, per day, the teacher's cost of the routed calls against their actual cost and
// the quality it was bought at (/api/v1/economics); alerts for failed jobs, refused promotions, drift and canary
// roll-backs. Refreshes every 10 s.
import { api } from "../api.js";
import { h, mount, badge, num, usd, shortId, when, table } from "../dom.js";
import { barChart } from "../charts.js";

const ROLES = [["teacher", "Teacher"], ["production", "Production"], ["canary", "Canary"], ["other", "Other student"]];

function active(d) {
  return d.lastJob || d.route.productionModel || d.route.canaryModel || d.days.some((x) => x.traces);
}

const judged = (x) => x.wins + x.ties + x.losses;
const rate = (value, n) => value === null || value === undefined ? "—" : `${num(value * 100, 1)}% of ${num(n)}`;

function economicsRow(x, label) {
  return h("tr", {}, label === "Total" ? h("th", { scope: "row" }, label) : h("td", {}, label),
    h("td", { class: "num" }, num(x.studentRequests)),
    h("td", { class: "num" }, num(x.teacherRequests), x.fallbacks ? ` (${num(x.fallbacks)} fallback)` : ""),
    h("td", { class: "num" }, usd(x.teacherCostUsd)),
    h("td", { class: "num" }, usd(x.costUsd)),
    h("td", { class: "num" }, usd(x.savingUsd), x.savingPercent === null ? "" : ` (${num(x.savingPercent, 1)}%)`),
    h("td", { class: "num" }, rate(x.approvalRate, x.approved + x.rejected)),
    h("td", { class: "num" }, rate(x.winRate, judged(x))));
}

// Per day with routed calls or judged pairs: what the calls would have cost on the teacher, what they cost, the
// saving, and the quality (people's approval of the student's answers; the judged win rate, ties counting half).
function economics(d, e) {
  const days = (e?.days || []).filter((x) => x.studentRequests || x.teacherRequests || judged(x));
  return h("div", {}, h("h3", {}, "Cost and quality per day"), days.length
    ? [table(["Date", { text: "Student calls", class: "num" }, { text: "Teacher calls", class: "num" },
      { text: "Teacher cost", class: "num" }, { text: "Actual cost", class: "num" }, { text: "Saving", class: "num" },
      { text: "Approval", class: "num" }, { text: "Win rate vs teacher", class: "num" }],
    [...days.map((x) => economicsRow(x, x.date)), economicsRow(e.total, "Total")],
    { "aria-label": `${d.domain}: cost, saving and quality per day` }),
    h("p", { class: "muted" }, "Teacher cost: every routed call's tokens at the teacher's prices. Actual: the student's ",
      "calls at its prices (or their share of the LoRA server's hourly cost), the teacher's and fallbacks at the ",
      "teacher's.")]
    : h("p", { class: "muted" }, "No routed calls or judged pairs in this window."));
}

function domainCard(d, e) {
  const dates = d.days.map((x) => x.date);
  const short = (c) => c.slice(5);
  const requests = ROLES.map(([key, name]) => ({ key, name, values: d.days.map((x) => x.requests[key] || 0) }))
    .filter((x) => x.values.some(Boolean));
  return h("section", { class: "panel", "aria-labelledby": `d-${d.domain}` },
    h("div", { class: "spread" }, h("h2", { id: `d-${d.domain}` }, d.domain), h("span", { class: "muted" }, d.description)),
    h("div", { class: "kpis" },
      h("div", { class: "kpi" }, h("span", {}, "Production"), h("b", {}, d.route.productionModel
        ? h("a", { href: `#/models/${d.route.productionModel}` }, shortId(d.route.productionModel)) : "teacher")),
      h("div", { class: "kpi" }, h("span", {}, "Canary"), h("b", {}, d.route.canaryModel
        ? [h("a", { href: `#/models/${d.route.canaryModel}` }, shortId(d.route.canaryModel)), ` ${num(d.route.canaryPercent)}% · `,
          h("a", { href: `#/canary/${d.domain}`, "aria-label": `Canary of ${d.domain}` }, "canary")]
        : "none")),
      h("div", { class: "kpi" }, h("span", {}, "Last job"), h("b", {}, d.lastJob
        ? h("a", { href: `#/jobs/${d.lastJob.jobId}` }, badge(d.lastJob.status)) : "none")),
      h("div", { class: "kpi" }, h("span", {}, "Requests (window)"), h("b", {}, num(d.requests))),
      h("div", { class: "kpi" }, h("span", {}, "Saving vs teacher"), h("b", { class: "saving" },
        usd(e ? e.total.savingUsd : d.savingUsd)))),
    h("div", { class: "grid" }, h("div", {}, h("h3", {}, "Traces and golden traces per day"),
    barChart(dates, [
      { key: "traces", name: "Traces", values: d.days.map((x) => x.traces) },
      { key: "golden", name: "Golden", values: d.days.map((x) => x.golden) }],
    { label: `${d.domain}: traces and golden traces per day`, shortLabel: short })),
    h("div", {}, h("h3", {}, "Requests per day by route"), requests.length
      ? barChart(dates, requests, { label: `${d.domain}: routed requests per day`, stacked: true, shortLabel: short })
      : h("p", { class: "muted" }, "No requests through the router in this window."))),
    economics(d, e));
}

const ALERT_KINDS = { "job.failed": "Job failed", "promotion.refused": "Promotion refused", "drift.alert": "Drift",
  "canary.rollback": "Canary rolled back" };

function alerts(list) {
  if (!list.length) {
    return h("p", { class: "muted" }, "No failed jobs, refused promotions, drift or roll-backs in this window.");
  }
  return h("div", {}, list.map((a) => h("div", { class: `alert ${a.level}` },
    h("b", {}, ALERT_KINDS[a.kind] || a.kind), ` · ${a.domain} · `,
    a.jobId ? h("a", { href: `#/jobs/${a.jobId}` }, `job ${shortId(a.jobId)}`)
      : h("a", { href: `#/canary/${a.domain}` }, `${a.kind === "drift.alert" ? "drift" : "canary"} of ${a.domain}`),
    ` · ${when(a.at)}: `, a.message)));
}

export async function render(root, ctx) {
  const days = Number(ctx.query.get("days") || 14);
  const body = h("div");
  const draw = async () => {
    const [data, costs] = await Promise.all([api("/api/v1/insights/overview", { query: { days } }),
      api("/api/v1/economics", { query: { days: Math.min(days, 90) } })]);
    if (!ctx.alive()) return;
    const byDomain = Object.fromEntries(costs.domains.map((e) => [e.domain, e]));
    const busy = data.domains.filter(active), quiet = data.domains.filter((d) => !active(d));
    const saving = costs.total.savingUsd;
    mount(body,
      h("div", { class: "kpis panel" },
        h("div", { class: "kpi" }, h("span", {}, "Traces"), h("b", {}, num(data.domains.reduce((a, d) =>
          a + d.days.reduce((b, x) => b + x.traces, 0), 0)))),
        h("div", { class: "kpi" }, h("span", {}, "Golden"), h("b", {}, num(data.domains.reduce((a, d) =>
          a + d.days.reduce((b, x) => b + x.golden, 0), 0)))),
        h("div", { class: "kpi" }, h("span", {}, "Routed requests"), h("b", {}, num(data.domains.reduce((a, d) =>
          a + d.requests, 0)))),
        h("div", { class: "kpi" }, h("span", {}, "Saving vs teacher"), h("b", {}, usd(saving)))),
      h("section", { class: "panel", "aria-labelledby": "alerts" }, h("h2", { id: "alerts" }, "Alerts"), alerts(data.alerts)),
      busy.map((d) => domainCard(d, byDomain[d.domain])),
      quiet.length ? h("p", { class: "muted" }, `No traffic, jobs or students yet: ${quiet.map((d) => d.domain).join(", ")}.`) : null);
  };
  mount(root, h("div", { class: "spread" }, h("h1", {}, "Overview"),
    h("span", { class: "muted" }, `Last ${days} days (UTC) · updates every 10 s`)), body);
  await draw();
  ctx.every(10000, draw);
}
