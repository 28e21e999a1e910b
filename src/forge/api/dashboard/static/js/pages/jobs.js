// Jobs: every run with its status and progress, newest first; refreshes every 3 s.
import { all } from "../api.js";
import { h, mount, badge, num, when, shortId, progressBar, table } from "../dom.js";

export const FINISHED = new Set(["COMPLETED", "SKIPPED", "FAILED", "CANCELLED"]);
export const STAGES = ["COLLECTING", "CURATING", "UPLOADING", "TRAINING", "EVALUATING", "PROMOTING"];

/** How far a job is: the stages behind it, plus training's own progress inside TRAINING. */
export function fraction(job) {
  if (FINISHED.has(job.status)) return 1;
  const at = STAGES.indexOf(job.status);
  const inside = job.status === "TRAINING" ? (job.training?.progress || 0) : 0;
  return Math.max(0, (at + inside) / STAGES.length);
}

export async function render(root, ctx) {
  const body = h("div");
  const draw = async () => {
    const jobs = (await all("/api/v1/forge/jobs", {}, 1000)).reverse();
    if (!ctx.alive()) return;
    mount(body, jobs.length ? table(["Job", "Domain", "Status", "Progress", { text: "Loss", class: "num" },
      { text: "Provider", class: "hide-narrow" }, { text: "Created", class: "hide-narrow" }],
    jobs.map((j) => h("tr", { "data-job": j.jobId },
      h("td", {}, h("a", { href: `#/jobs/${j.jobId}` }, shortId(j.jobId))), h("td", {}, j.domain),
      h("td", {}, badge(j.status)), h("td", {}, progressBar(fraction(j), `Job ${shortId(j.jobId)} progress`)),
      h("td", { class: "num" }, num(j.training?.loss, 3)), h("td", { class: "hide-narrow" }, j.provider || "—"),
      h("td", { class: "hide-narrow" }, when(j.createdAt)))), { "aria-label": "Jobs" })
      : h("p", { class: "muted" }, "No jobs yet: start one."));
  };
  mount(root, h("div", { class: "spread" }, h("h1", {}, "Jobs"), h("a", { class: "button primary", href: "#/jobs/new" }, "New run")),
    h("section", { class: "panel" }, body));
  await draw();
  ctx.every(3000, draw);
}
