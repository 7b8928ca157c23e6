// The API client: the admin token as a bearer token, the signed-in
// person's name as X-Meterd-Actor (recorded in the audit trail), and the
// API's one error shape {code, message, field, ...} as ApiError.

const TOKEN = "meterd.token";
const ACTOR = "meterd.actor";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || "http_" + status;
    this.body = body || {};
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN) || localStorage.getItem(TOKEN) || "";
  },
  get actor() {
    return sessionStorage.getItem(ACTOR) || localStorage.getItem(ACTOR) || "";
  },
  save(token, actor, remember) {
    this.clear();
    const s = remember ? localStorage : sessionStorage;
    s.setItem(TOKEN, token);
    if (actor) s.setItem(ACTOR, actor);
  },
  clear() {
    for (const s of [sessionStorage, localStorage]) {
      s.removeItem(TOKEN);
      s.removeItem(ACTOR);
    }
  },
};

// onUnauthorized is set by the app: a 401 signs out.
export let onUnauthorized = () => {};
export function setOnUnauthorized(f) {
  onUnauthorized = f;
}

// api sends a request; body is JSON-encoded. opts.signal cancels it,
// opts.token overrides the stored token (sign-in).
export async function api(method, path, body, opts = {}) {
  const headers = { Authorization: "Bearer " + (opts.token ?? session.token) };
  // Header values are bytes: send the name's UTF-8 (fetch refuses
  // characters beyond Latin-1, and would send Latin-1 ones as one byte).
  if (session.actor) headers["X-Meterd-Actor"] = String.fromCharCode(...new TextEncoder().encode(session.actor));
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: opts.signal });
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { code: "bad_response", message: text.slice(0, 200) };
  }
  if (!resp.ok) {
    if (resp.status === 401 && !opts.token) onUnauthorized();
    throw new ApiError(resp.status, data);
  }
  return data;
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body, opts) => api("POST", path, body ?? {}, opts);
export const patch = (path, body, opts) => api("PATCH", path, body, opts);
export const put = (path, body, opts) => api("PUT", path, body, opts);

// qs builds a query string, skipping empty values.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v != null) u.set(k, v);
  const s = u.toString();
  return s ? "?" + s : "";
}

// isAbort tells a cancelled request from a failure.
export const isAbort = (e) => e?.name === "AbortError";
