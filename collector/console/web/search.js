// search.js: the search page. A query in tapir's language (with field
// completion and help from GET /api/v1/fields), a histogram of the
// matching flows over time, the results table with sorting and paging,
// and downloads of the whole result as pcap or pcapng.

import { getJSON, getNDJSON, url, ApiError } from "./api.js";
import { h, fill, announce, errorBox, bytes, num, duration, time, at } from "./dom.js";
import { go, href } from "./nav.js";
import { barChart } from "./charts.js";
import { completer, fieldHelp } from "./complete.js";
import { downloadButtons } from "./download.js";

const PAGE_SIZES = ["50", "100", "500"];

/** Columns of the results table; sort is the API's sort field, if any. */
const COLUMNS = [
  { label: "Time", sort: "start" },
  { label: "Sensor" },
  { label: "Source" },
  { label: "Destination" },
  { label: "Service / SNI" },
  { label: "Packets", sort: "packets", num: true },
  { label: "Bytes", sort: "bytes", num: true },
  { label: "Duration", sort: "duration", num: true },
  { label: "Flow ID / Community ID" },
];

export function title(r) {
  const q = r.params.get("q");
  return q ? "Search: " + q : "Search";
}

export async function render(main, r, current) {
  const p = params(r);
  const input = h("input", { id: "q", name: "q", value: p.q, autocomplete: "off", spellcheck: "false",
    placeholder: "tls.client.server_name == *.example.com and dst port 443", "aria-describedby": "q-hint" });
  const form = h("form", { class: "search", role: "search", "aria-label": "Flows",
    onsubmit: (ev) => { ev.preventDefault(); go("search", "", { q: input.value.trim(), sort: p.sort, limit: p.limit }); } },
    h("label", { for: "q" }, "Query"),
    h("div", { class: "qrow" }, completer(input), h("button", { type: "submit" }, "Search")),
    h("p", { id: "q-hint", class: "help" },
      "Enter searches. Tab completes a field name, Escape closes the list. ",
      "Without after/before the last hour is searched."),
    h("label", { for: "limit", class: "inline" }, "Flows per page "),
    h("select", { id: "limit", onchange: (ev) => go("search", "", { q: p.q, sort: p.sort, limit: ev.target.value }) },
      [...new Set([...PAGE_SIZES, p.limit])].map((n) => h("option", { value: n, selected: n === p.limit }, n))));
  const histo = h("section", { class: "histogram", "aria-labelledby": "histo-h" },
    h("h2", { id: "histo-h" }, "Matching flows over time"), h("p", { class: "loading" }, "…"));
  const results = h("section", { class: "results", "aria-labelledby": "results-h" },
    h("h2", { id: "results-h", tabindex: "-1" }, "Flows"),
    h("div", { id: "results-status", role: "status", "aria-live": "polite" }, "Searching…"),
    h("div", { class: "table-wrap" }));
  const dl = downloadButtons("Download the whole result", "tapir-result", (format) =>
    url("/api/v1/pcap", { query: p.q || undefined, format }), !p.q);
  fill(main, h("h1", { class: "visually-hidden" }, "Search flows"), form, fieldHelp(input), histo, results,
    h("section", { class: "downloads", "aria-label": "Downloads" }, dl));
  // Keyboard users stay where they were: in the query box after a search,
  // at the results after a page link.
  if (p.cursor) results.querySelector("#results-h").focus();
  else input.focus();
  await Promise.all([loadHistogram(histo, p, current), loadResults(results, p, current)]);
}

/** The search parameters of the route; limit is 1-1000 (default 50). */
function params(r) {
  const n = parseInt(r.params.get("limit") || "50", 10);
  const limit = String(n >= 1 && n <= 1000 ? n : 50);
  return { q: r.params.get("q") || "", sort: r.params.get("sort") || "", cursor: r.params.get("cursor") || "", limit };
}

async function loadResults(section, p, current) {
  const status = section.querySelector("#results-status");
  const wrap = section.querySelector(".table-wrap");
  let res;
  try {
    res = await getNDJSON(url("/api/v1/flows", { query: p.q, limit: p.limit, sort: p.sort, cursor: p.cursor }));
  } catch (e) {
    if (!current()) return;
    status.textContent = "";
    fill(wrap, errorBox(e, "Search failed"));
    return;
  }
  if (!current()) return;
  const next = res.headers.get("X-Tapir-Next") || "";
  const win = res.headers.get("X-Tapir-Window") || "";
  const n = res.records.length;
  const summary = n === 0 ? "No flows matched." :
    `${num(n)} flow${n === 1 ? "" : "s"} shown${next ? "; more matched" : ""}.`;
  fill(status, summary, win ? h("span", { class: "window" }, " Window searched: " + win.replace("/", " to ")) : "");
  announce(summary);
  fill(wrap, n === 0 ? h("p", { class: "hint" }, "Widen the time window (after 24h ago) or loosen the query.") :
    table(res.records, p), pager(p, next));
}

function table(records, p) {
  return h("table", { class: "flows" },
    h("caption", { class: "visually-hidden" }, "Flows matching the query"),
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => header(c, p)))),
    h("tbody", {}, records.map(row)));
}

/** A column header; sortable ones hold a button that flips the order. */
function header(c, p) {
  if (!c.sort) return h("th", { scope: "col" }, c.label);
  const cur = p.sort === c.sort ? "ascending" : p.sort === "-" + c.sort ? "descending" : "";
  const next = cur === "descending" ? c.sort : "-" + c.sort;
  return h("th", { scope: "col", "aria-sort": cur || false, class: c.num ? "num" : "" },
    h("a", { href: href("search", "", { q: p.q, sort: next, limit: p.limit }), class: "sort",
      "aria-label": `Sort by ${c.label.toLowerCase()}, ${next.startsWith("-") ? "largest" : "smallest"} first` },
      c.label, cur === "ascending" ? " ▲" : cur === "descending" ? " ▼" : ""));
}

function row(rec) {
  const id = at(rec, "tapir.flow_id") || "", cid = at(rec, "network.community_id") || "";
  return h("tr", {},
    h("td", { class: "time" }, time(at(rec, "event.start") || rec["@timestamp"])),
    h("td", { class: "sensor" }, at(rec, "tapir.sensor_id") || ""),
    h("td", {}, endpoint(rec.source)),
    h("td", {}, endpoint(rec.destination)),
    h("td", { class: "service", title: service(rec) }, service(rec)),
    h("td", { class: "num", "data-value": at(rec, "network.packets") || 0 }, num(at(rec, "network.packets"))),
    h("td", { class: "num", "data-value": at(rec, "network.bytes") || 0 }, bytes(at(rec, "network.bytes"))),
    h("td", { class: "num", "data-value": at(rec, "event.duration") || 0 }, duration(at(rec, "event.duration"))),
    h("td", { class: "id" },
      id ? h("a", { class: "fid", href: href("flow", id), "aria-label": "Open flow " + id }, id) : "",
      cid ? h("a", { class: "cid", href: href("flow", cid), "aria-label": "Open flow by Community ID " + cid }, cid) : ""));
}

/** "10.0.0.1:443" with the geo and AS enrichment beneath. */
export function endpoint(e) {
  if (!e) return "";
  const ip = e.ip || "";
  const addr = e.port ? (ip.includes(":") ? `[${ip}]:${e.port}` : `${ip}:${e.port}`) : ip;
  const extra = [];
  if (e.geo && (e.geo.country_iso_code || e.geo.city_name)) extra.push([e.geo.city_name, e.geo.country_iso_code].filter(Boolean).join(", "));
  if (e.as && e.as.number) extra.push("AS" + e.as.number + (e.as.organization && e.as.organization.name ? " " + e.as.organization.name : ""));
  if (e.domain) extra.push(e.domain);
  return [h("span", { class: "addr" }, addr), extra.length ? h("span", { class: "enrich" }, extra.join(" · ")) : ""];
}

/** The service a flow spoke: SNI, DNS name, HTTP host, else protocol/port. */
export function service(rec) {
  const sni = at(rec, "tls.client.server_name");
  if (sni) return "TLS " + sni;
  const qn = at(rec, "dns.question.name");
  if (qn) return "DNS " + qn;
  const host = at(rec, "url.domain");
  if (host) return "HTTP " + host + (at(rec, "url.path") || "");
  if (at(rec, "tapir.ssh")) return "SSH";
  const tr = at(rec, "network.transport") || "";
  const port = at(rec, "destination.port");
  return tr + (port ? "/" + port : "");
}

function pager(p, next) {
  const links = [];
  if (p.cursor) links.push(h("a", { href: href("search", "", { q: p.q, sort: p.sort, limit: p.limit }) }, "First page"));
  if (next) links.push(h("a", { href: href("search", "", { q: p.q, sort: p.sort, limit: p.limit, cursor: next }), rel: "next" }, "Next page"));
  return links.length ? h("nav", { class: "pager", "aria-label": "Pages" }, links) : "";
}

async function loadHistogram(section, p, current) {
  let hist;
  try {
    hist = await getJSON(url("/api/v1/flows/histogram", { query: p.q, buckets: 60 }));
  } catch (e) {
    if (!current()) return;
    section.lastChild.replaceWith(e instanceof ApiError && e.status === 404 && e.code !== "flow_unknown" ?
      h("p", { class: "hint" }, "This collector does not draw histograms.") : errorBox(e, "Histogram"));
    return;
  }
  if (!current()) return;
  const counts = hist.counts || [];
  const step = (hist.bucket_seconds || 0) * 1000, from = new Date(hist.from).getTime();
  const total = counts.reduce((a, b) => a + b, 0);
  const titles = counts.map((c, i) => `${time(new Date(from + i * step).toISOString())}: ${num(c)} flows` +
    (hist.bytes ? `, ${bytes(hist.bytes[i])}` : ""));
  section.lastChild.replaceWith(barChart(counts, {
    label: `${num(total)} matching flows between ${time(hist.from)} and ${time(hist.to)}, in ${counts.length} buckets of ${hist.bucket_seconds} s`,
    xLeft: time(hist.from), xRight: time(hist.to), titles }));
}
