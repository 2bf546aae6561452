// nav.js: the hash routes. "#/flow/ID?packet=3" is page "flow", arg
// "ID" and params {packet: 3}.

/** Parses location.hash into {page, arg, params}. */
export function route() {
  const raw = location.hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  const slash = path.indexOf("/");
  const page = slash < 0 ? path : path.slice(0, slash);
  const arg = slash < 0 ? "" : decodeURIComponent(path.slice(slash + 1));
  return { page: page || "search", arg, params };
}

/** The hash of a page: href("flow", id, {packet: 3}). */
export function href(page, arg = "", params = {}) {
  let hash = "#/" + page + (arg ? "/" + encodeURIComponent(arg) : "");
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null)).toString();
  return q ? hash + "?" + q : hash;
}

/** Navigates to a page; renders again when the hash is already there. */
export function go(page, arg = "", params = {}) {
  const hash = href(page, arg, params);
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
