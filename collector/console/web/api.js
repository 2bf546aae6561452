// api.js: the console's only door to the collector. Every call carries
// the bearer token the user signed in with (sessionStorage, gone when
// the tab closes); errors come back as ApiError with the API's code.

const TOKEN_KEY = "tapir.token";

/** The signed-in token, or "" when signed out. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/** Keeps the token for this tab's session. */
export function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
}

/** Forgets the token. */
export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An API answer that was not 2xx: status, code ("forbidden") and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || "HTTP " + status);
    this.status = status;
    this.code = code || "";
  }
}

/** fetch with the token; throws ApiError on a non-2xx answer. */
export async function call(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  const t = token();
  if (t) headers.set("Authorization", "Bearer " + t);
  let resp;
  try {
    resp = await fetch(path, { ...opts, headers, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "network", "the collector did not answer (" + e.message + ")");
  }
  if (!resp.ok) throw await errorOf(resp);
  return resp;
}

async function errorOf(resp) {
  let code = "", message = "";
  try {
    const body = await resp.json();
    // Today's shape is {"error": message, "code": code}; accept
    // {"error": code, "message": message} too.
    code = body.message ? body.code || body.error : body.code;
    message = body.message || body.error || "";
  } catch {
    message = resp.statusText;
  }
  if (resp.status === 401) code = code || "unauthenticated";
  if (resp.status === 403) code = code || "forbidden";
  return new ApiError(resp.status, code, message);
}

/** GET path and parse its JSON body. */
export async function getJSON(path) {
  const resp = await call(path);
  return resp.json();
}

/** GET an NDJSON listing: {records, headers}. */
export async function getNDJSON(path) {
  const resp = await call(path);
  const text = await resp.text();
  const records = [];
  for (const line of text.split("\n")) {
    if (line.trim() !== "") records.push(JSON.parse(line));
  }
  return { records, headers: resp.headers };
}

/**
 * Downloads path's body as a file named name (fetch with the token, then
 * a blob link: a plain link could not carry the Authorization header).
 */
export async function download(path, name) {
  const resp = await call(path);
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return { bytes: blob.size, headers: resp.headers };
}

/** Builds "path?k=v&..." leaving out empty values. */
export function url(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? path + "?" + s : path;
}

/** The path of a flow's sub-resource, the ID escaped (Community IDs hold / + =). */
export function flowPath(id, sub = "") {
  return "/api/v1/flows/" + encodeURIComponent(id) + sub;
}
