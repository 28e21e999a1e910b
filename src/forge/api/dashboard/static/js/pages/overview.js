// Overview: per domain, traces and golden traces per day, requests per day by route, who serves, the last job,
// the saving against the teacher; alerts for failed jobs and refused promotions. Refreshes every 10 s.
import { api } from "../api.js";
import { h, mount, badge, num, usd, shortId, when } from "../dom.js";
import { barChart } from "../charts.js";

const ROLES = [["teacher", "Teacher"], ["production", "Production"], ["canary", "Canary"], ["other", "Other student"]];

function active(d) {
  return d.lastJob || d.route.productionModel || d.route.canaryModel || d.days.some((x) => x.traces);
}

function domainCard(d) {
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
        ? [h("a", { href: `#/models/${d.route.canaryModel}` }, shortId(d.route.canaryModel)), ` ${num(d.route.canaryPercent)}%`]
        : "none")),
      h("div", { class: "kpi" }, h("span", {}, "Last job"), h("b", {}, d.lastJob
        ? h("a", { href: `#/jobs/${d.lastJob.jobId}` }, badge(d.lastJob.status)) : "none")),
      h("div", { class: "kpi" }, h("span", {}, "Requests (window)"), h("b", {}, num(d.requests))),
      h("div", { class: "kpi" }, h("span", {}, "Saving vs teacher"), h("b", { class: "saving" }, usd(d.savingUsd)))),
    h("div", { class: "grid" }, h("div", {}, h("h3", {}, "Traces and golden traces per day"),
    barChart(dates, [
      { key: "traces", name: "Traces", values: d.days.map((x) => x.traces) },
      { key: "golden", name: "Golden", values: d.days.map((x) => x.golden) }],
    { label: `${d.domain}: traces and golden traces per day`, shortLabel: short })),
    h("div", {}, h("h3", {}, "Requests per day by route"), requests.length
      ? barChart(dates, requests, { label: `${d.domain}: routed requests per day`, stacked: true, shortLabel: short })
      : h("p", { class: "muted" }, "No requests through the router in this window."))));
}

function alerts(list) {
  if (!list.length) return h("p", { class: "muted" }, "No failed jobs or refused promotions in this window.");
  return h("div", {}, list.map((a) => h("div", { class: `alert ${a.level}` },
    h("b", {}, a.kind === "job.failed" ? "Job failed" : "Promotion refused"), ` · ${a.domain} · `,
    h("a", { href: `#/jobs/${a.jobId}` }, `job ${shortId(a.jobId)}`), ` · ${when(a.at)}: `, a.message)));
}

export async function render(root, ctx) {
  const days = Number(ctx.query.get("days") || 14);
  const body = h("div");
  const draw = async () => {
    const data = await api("/api/v1/insights/overview", { query: { days } });
    if (!ctx.alive()) return;
    const busy = data.domains.filter(active), quiet = data.domains.filter((d) => !active(d));
    const saving = data.domains.reduce((a, d) => a + d.savingUsd, 0);
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
      busy.map(domainCard),
      quiet.length ? h("p", { class: "muted" }, `No traffic, jobs or students yet: ${quiet.map((d) => d.domain).join(", ")}.`) : null);
  };
  mount(root, h("div", { class: "spread" }, h("h1", {}, "Overview"),
    h("span", { class: "muted" }, `Last ${days} days (UTC) · updates every 10 s`)), body);
  await draw();
  ctx.every(10000, draw);
}
