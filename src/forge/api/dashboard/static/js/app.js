// The dashboard shell: log in, the page chosen by the URL's hash, live views that poll until you leave them.
import { api, setCsrf, whenLoggedOut } from "./api.js";
import { h, mount, errorBox, toast } from "./dom.js";
import * as overview from "./pages/overview.js";
import * as traces from "./pages/traces.js";
import * as datasets from "./pages/datasets.js";
import * as jobs from "./pages/jobs.js";
import * as job from "./pages/job.js";
import * as wizard from "./pages/wizard.js";
import * as models from "./pages/models.js";
import * as model from "./pages/model.js";
import * as domains from "./pages/domains.js";
import * as canary from "./pages/canary.js";

const ROUTES = [
  [/^\/$/, overview, "#/"],
  [/^\/traces$/, traces, "#/traces"],
  [/^\/datasets$/, datasets, "#/datasets"],
  [/^\/datasets\/([\w-]+)$/, datasets, "#/datasets"],
  [/^\/jobs$/, jobs, "#/jobs"],
  [/^\/jobs\/new$/, wizard, "#/jobs"],
  [/^\/jobs\/([\w-]+)$/, job, "#/jobs"],
  [/^\/models$/, models, "#/models"],
  [/^\/models\/([\w-]+)$/, model, "#/models"],
  [/^\/domains$/, domains, "#/domains"],
  [/^\/canary\/([\w-]+)$/, canary, "#/domains"],
];

const main = document.getElementById("main");
const header = document.querySelector(".top");
let me = null;
let cleanups = [];
let generation = 0;

function leave() {
  for (const fn of cleanups) fn();
  cleanups = [];
  generation += 1;
}

/** What a page gets: the URL's parts, the session, and ways to poll and clean up that end when it is left. */
function context(params, query) {
  const mine = generation;
  return {
    params, query, me,
    alive: () => mine === generation,
    every(ms, fn) {
      let timer = null;
      const tick = async () => {
        if (mine !== generation) return;
        try { await fn(); } catch (err) { if (err.status !== 401) console.warn("refresh failed:", err.message); }
        if (mine === generation) timer = setTimeout(tick, ms);
      };
      timer = setTimeout(tick, ms);
      cleanups.push(() => clearTimeout(timer));
    },
    onLeave(fn) { cleanups.push(fn); },
    go(hash) { location.hash = hash; },
  };
}

async function route() {
  leave();
  if (!me) return showLogin();
  const [path, qs] = (location.hash.slice(1) || "/").split("?");
  const found = ROUTES.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll("#nav a")) {
    a.toggleAttribute("aria-current", false);
    if (found && a.getAttribute("href") === found[2]) a.setAttribute("aria-current", "page");
  }
  document.getElementById("nav").classList.remove("open");
  if (!found) return mount(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the overview")));
  const params = path.match(found[0]).slice(1);
  mount(main, h("p", { class: "muted" }, "Loading…"));
  try {
    await found[1].render(main, context(params, new URLSearchParams(qs || "")));
  } catch (err) {
    if (err.status !== 401) mount(main, h("h1", {}, "Something went wrong"), errorBox(err));
  }
}

function showLogin(message) {
  header.hidden = true;
  const input = h("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "current-password",
    required: true, "aria-describedby": "key-help" });
  const problem = h("div", { "aria-live": "assertive" }, message ? errorBox(message) : null);
  const form = h("form", { class: "panel login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in to Forge"),
    h("label", { for: "api-key" }, h("span", {}, "API key")), input,
    h("p", { id: "key-help", class: "muted" }, "A key from `forge keys create --tenant T`. It is exchanged for a ",
      "session cookie and not kept by the browser."),
    problem,
    h("button", { class: "primary", type: "submit" }, "Log in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const session = await api("/api/v1/session", { method: "POST", json: { apiKey: input.value } });
      input.value = "";
      start(session);
    } catch (err) {
      mount(problem, errorBox(err));
      input.focus();
    }
  });
  mount(main, form);
  input.focus();
}

function start(session) {
  me = session;
  setCsrf(session.csrfToken);
  header.hidden = false;
  header.querySelector(".tenant").textContent = `tenant ${session.tenant} · ${session.scopes.join(", ")}`;
  route();
}

whenLoggedOut(() => {
  if (!me) return;
  me = null;
  setCsrf(null);
  leave();
  showLogin("Your session has ended; log in again.");
});

header.querySelector(".logout").addEventListener("click", async () => {
  try { await api("/api/v1/session", { method: "DELETE" }); } catch (err) { /* ended already */ }
  me = null;
  setCsrf(null);
  leave();
  showLogin();
  toast("Logged out.");
});

header.querySelector(".menu").addEventListener("click", (event) => {
  const nav = document.getElementById("nav");
  const open = nav.classList.toggle("open");
  event.currentTarget.setAttribute("aria-expanded", String(open));
});

window.addEventListener("hashchange", () => { route(); main.focus({ preventScroll: true }); });

(async () => {
  try {
    const session = await api("/api/v1/session");
    if (session.authenticated) start(session); else showLogin();
  } catch (err) {
    mount(main, errorBox(err));
  }
})();
