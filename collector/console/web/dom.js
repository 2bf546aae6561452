// dom.js: building DOM nodes without parsing HTML (the data is untrusted:
// names, URLs and payloads come off the wire) and formatting numbers.

/**
 * h("a", {href: "#/x", class: "k"}, "text", child...) creates an element.
 * Attributes starting with "on" are listeners; false/null ones are left out.
 */
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

/** Like h for SVG elements. */
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(e, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of e. */
export function fill(e, ...children) {
  e.replaceChildren();
  append(e, children);
  return e;
}

/** Announces text to screen readers through the page's live region. */
export function announce(text) {
  const s = document.getElementById("status");
  if (s) s.textContent = text;
}

/** An error paragraph (role alert) for an ApiError or Error. */
export function errorBox(err, what) {
  let msg = err.message || String(err);
  if (err.status === 403) msg = "Your token lacks the role this needs: " + msg;
  if (err.status === 401) msg = "Not signed in or the token was refused: " + msg;
  return h("p", { class: "error", role: "alert" }, what ? what + ": " : "", msg);
}

const units = ["B", "KB", "MB", "GB", "TB"];

/** 1536 -> "1.5 KB" (powers of 1024). */
export function bytes(n) {
  n = Number(n) || 0;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
}

/** 12345 -> "12,345". */
export function num(n) {
  return (Number(n) || 0).toLocaleString("en-US");
}

/** Nanoseconds -> "1.234 s" / "12 ms" / "0 s". */
export function duration(ns) {
  const ms = (Number(ns) || 0) / 1e6;
  if (ms >= 1000) return (ms / 1000).toFixed(3) + " s";
  if (ms >= 1) return ms.toFixed(1) + " ms";
  if (ms > 0) return (ms * 1000).toFixed(0) + " µs";
  return "0 s";
}

/** An RFC 3339 time rendered in UTC to the millisecond. */
export function time(t) {
  if (!t) return "";
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().replace("T", " ").replace("Z", "");
}

/** The value at a dotted path of an object ("source.geo.country_iso_code"). */
export function at(obj, path) {
  let v = obj;
  for (const k of path.split(".")) {
    if (v === null || v === undefined) return undefined;
    v = v[k];
  }
  return v;
}
