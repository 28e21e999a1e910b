// Every call goes to Forge's own /api/v1 with the session cookie; a change carries the session's CSRF token.

let csrf = null;
let onLoggedOut = () => {};

export const setCsrf = (token) => { csrf = token; };
export const whenLoggedOut = (fn) => { onLoggedOut = fn; };

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export async function api(path, { method = "GET", json, body, query, headers = {} } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
  const sent = { Accept: "application/json", ...headers };
  if (json !== undefined) {
    sent["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  if (method !== "GET" && csrf) sent["X-CSRF-Token"] = csrf;
  const response = await fetch(url, { method, headers: sent, body, credentials: "same-origin" });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) onLoggedOut();
    throw new ApiError(response.status, data);
  }
  return data;
}

/** Every item of a paged list, following continuation tokens, up to `max`. */
export async function all(path, query = {}, max = 1000) {
  const items = [];
  let continuation = null;
  do {
    const page = await api(path, { query: { ...query, limit: Math.min(1000, max - items.length), continuation } });
    items.push(...page.items);
    continuation = page.continuation;
  } while (continuation && items.length < max);
  return items;
}
