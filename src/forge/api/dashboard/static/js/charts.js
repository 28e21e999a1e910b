// Charts as inline SVG, drawn from data with no library: a line chart (loss curves) and grouped/stacked bars.
import { h, s, num } from "./dom.js";

const W = 640, H = 240, PAD = { l: 48, r: 12, t: 12, b: 28 };

function ticks(lo, hi, n = 4) {
  if (hi === lo) return [lo];
  return Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
}

function legend(series) {
  return h("div", { class: "legend" }, series.map((x) => h("span", {}, h("i", { class: `k-${x.key}` }), x.name)));
}

/** Lines over x: series = [{key, name, points: [[x, y], ...]}]. */
export function lineChart(series, { label, xLabel = "", yLabel = "" } = {}) {
  const pts = series.flatMap((x) => x.points);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label || "chart" });
  if (!pts.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No points yet"));
    return h("figure", { class: "figure" }, svg);
  }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const y0 = Math.min(0, ...ys), y1 = Math.max(...ys) * 1.05 || 1;
  const X = (v) => PAD.l + ((v - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const Y = (v) => H - PAD.b - ((v - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);
  for (const t of ticks(y0, y1)) {
    svg.append(s("line", { class: "gridline", x1: PAD.l, x2: W - PAD.r, y1: Y(t), y2: Y(t) }),
      s("text", { x: PAD.l - 6, y: Y(t) + 4, "text-anchor": "end" }, num(t, 2)));
  }
  for (const t of ticks(x0, x1, 5)) {
    svg.append(s("text", { x: X(t), y: H - 8, "text-anchor": "middle" }, num(t, 0)));
  }
  svg.append(s("line", { class: "axis", x1: PAD.l, x2: PAD.l, y1: PAD.t, y2: H - PAD.b }),
    s("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: H - PAD.b, y2: H - PAD.b }));
  if (xLabel) svg.append(s("text", { x: W - PAD.r, y: H - PAD.b - 4, "text-anchor": "end" }, xLabel));
  if (yLabel) svg.append(s("text", { x: PAD.l + 4, y: PAD.t + 10 }, yLabel));
  for (const x of series) {
    if (!x.points.length) continue;
    const d = x.points.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
    svg.append(s("path", { class: `line s-${x.key}`, d, "data-series": x.key, "data-points": x.points.length }));
    if (x.points.length <= 60) {
      for (const p of x.points) svg.append(s("circle", { class: `s-${x.key}`, cx: X(p[0]), cy: Y(p[1]), r: 2.5 },
        s("title", {}, `${x.name} at ${num(p[0])}: ${num(p[1], 4)}`)));
    }
  }
  return h("figure", { class: "figure" }, svg, legend(series));
}

/** Bars per category: series = [{key, name, values: [...]}], grouped side by side or stacked. */
export function barChart(categories, series, { label, stacked = false, shortLabel = (c) => c } = {}) {
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label || "chart" });
  const totals = categories.map((_, i) => stacked ? series.reduce((a, x) => a + (x.values[i] || 0), 0)
    : Math.max(0, ...series.map((x) => x.values[i] || 0)));
  const top = Math.max(1, ...totals);
  const band = (W - PAD.l - PAD.r) / Math.max(1, categories.length);
  const Y = (v) => H - PAD.b - (v / top) * (H - PAD.t - PAD.b);
  for (const t of ticks(0, top)) {
    svg.append(s("line", { class: "gridline", x1: PAD.l, x2: W - PAD.r, y1: Y(t), y2: Y(t) }),
      s("text", { x: PAD.l - 6, y: Y(t) + 4, "text-anchor": "end" }, num(t, top < 10 ? 1 : 0)));
  }
  const every = Math.ceil(categories.length / 10);
  categories.forEach((c, i) => {
    const x = PAD.l + i * band;
    if (i % every === 0) svg.append(s("text", { x: x + band / 2, y: H - 8, "text-anchor": "middle" }, shortLabel(c)));
    let base = 0;
    series.forEach((x2, j) => {
      const v = x2.values[i] || 0;
      if (!v) return;
      const w = stacked ? band * 0.7 : (band * 0.8) / series.length;
      const left = stacked ? x + band * 0.15 : x + band * 0.1 + j * w;
      const y = Y(stacked ? base + v : v), hgt = Y(stacked ? base : 0) - y;
      svg.append(s("rect", { class: `s-${x2.key}`, x: left, y, width: Math.max(1, w - 1), height: Math.max(0, hgt) },
        s("title", {}, `${c} — ${x2.name}: ${num(v)}`)));
      if (stacked) base += v;
    });
  });
  svg.append(s("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: H - PAD.b, y2: H - PAD.b }));
  return h("figure", { class: "figure" }, svg, legend(series));
}
