// Tiny DOM helpers: elements from data, never from HTML strings (so nothing a trace says can become markup).

const SVG = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k === "class") el.setAttribute("class", v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value" && "value" in el) el.value = v;
    else if (k === "checked" || k === "selected" || k === "disabled") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const h = (tag, attrs = {}, ...children) => build(document.createElement(tag), attrs, children);
export const s = (tag, attrs = {}, ...children) => build(document.createElementNS(SVG, tag), attrs, children);

export function mount(root, ...children) {
  root.replaceChildren();
  for (const c of children.flat(Infinity)) if (c) root.append(c);
}

export const num = (n, digits = 0) => n === null || n === undefined || Number.isNaN(n) ? "—"
  : Number(n).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
export const usd = (n) => n === null || n === undefined ? "—"
  : "$" + Number(n).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: Math.abs(n) < 1 ? 4 : 2 });
export const pct = (n) => n === null || n === undefined ? "—" : `${(n * 100).toFixed(0)}%`;
export const shortId = (id) => id ? String(id).slice(-8) : "—";

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString("en-GB", { year: "numeric", month: "short", day: "2-digit", hour: "2-digit",
    minute: "2-digit", second: "2-digit", timeZone: "UTC" }) + " UTC";
}

export function duration(fromIso, toIso) {
  if (!fromIso) return "";
  const ms = (toIso ? new Date(toIso) : new Date()) - new Date(fromIso);
  const sec = Math.max(0, Math.round(ms / 1000));
  if (sec < 90) return `${sec} s`;
  if (sec < 5400) return `${Math.round(sec / 60)} min`;
  return `${(sec / 3600).toFixed(1)} h`;
}

const STATUS_TONE = { COMPLETED: "ok", SKIPPED: "idle", FAILED: "bad", CANCELLED: "idle", production: "ok",
  candidate: "warn", staging: "idle", archived: "idle", pass: "ok", fail: "bad", approved: "ok", rejected: "bad",
  canary: "warn" };

export const badge = (text) => h("span", { class: `badge ${STATUS_TONE[text] || ""}` }, text ?? "—");

export function progressBar(fraction, label) {
  const bar = h("div");
  bar.style.width = `${Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100)}%`;
  return h("div", { class: "progress", role: "progressbar", "aria-label": label || "Progress",
    "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round((fraction || 0) * 100) }, bar);
}

export function hbars(items, { format = (v) => num(v, 1), max } = {}) {
  const top = max ?? Math.max(1e-9, ...items.map((i) => i.value || 0));
  return h("div", { class: "bars" }, items.map((i) => {
    const fill = h("div", { class: `fill ${i.tone || ""}` });
    fill.style.width = `${Math.max(0, Math.min(100, ((i.value || 0) / top) * 100))}%`;
    return h("div", { class: "hbar" }, h("span", {}, i.label), h("div", { class: "track", "aria-hidden": "true" }, fill),
      h("span", { class: "mono" }, i.value === null || i.value === undefined ? "—" : format(i.value)));
  }));
}

export function meta(pairs) {
  return h("dl", { class: "meta" }, pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

export function table(headers, rows, attrs = {}) {
  return h("div", { class: "table-wrap" }, h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => typeof x === "string" ? h("th", { scope: "col" }, x)
      : h("th", { scope: "col", class: x.class }, x.text)))),
    h("tbody", {}, rows)));
}

export function toast(message, tone = "") {
  const box = document.querySelector(".toast");
  const item = h("div", { class: tone }, message);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

export function errorBox(err) {
  return h("div", { class: "error-box", role: "alert" }, err?.message || String(err));
}

/** A model as people read it: a local folder by its name only (as the API shows a job's base model). */
export const modelName = (m) => !m ? "—" : /^([./~]|[A-Za-z]:\\)/.test(m) || m.split("/").length > 2
  ? `local:${m.replace(/[\\/]+$/, "").split(/[\\/]/).pop()}` : m;
