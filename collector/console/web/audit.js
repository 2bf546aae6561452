// audit.js: the audit log for admins (GET /api/v1/audit), newest first,
// a page at a time.

import { getJSON, url } from "./api.js";
import { h, fill, announce, errorBox, bytes, time } from "./dom.js";
import { href } from "./nav.js";

const LIMIT = 100;

export function title() {
  return "Audit log";
}

export async function render(main, r, current) {
  const before = r.params.get("before") || "";
  let res;
  try {
    res = await getJSON(url("/api/v1/audit", { limit: LIMIT, before }));
  } catch (e) {
    if (!current()) return;
    fill(main, h("h1", {}, "Audit log"), e.status === 403 ?
      h("p", { class: "error", role: "alert" }, "The audit log is for admins: your token lacks the admin role.") : errorBox(e, "Audit log"));
    return;
  }
  if (!current()) return;
  const entries = res.entries || [];
  const cols = ["Time", "Subject", "Auth", "Remote", "Endpoint", "Flow", "Query", "Format", "Status", "Flows", "Packets", "Bytes", "ms", "Error"];
  fill(main, h("h1", {}, "Audit log"),
    h("p", { role: "status" }, `${entries.length} entries, newest first.`),
    h("div", { class: "table-wrap" }, h("table", { class: "audit" },
      h("caption", { class: "visually-hidden" }, "Audit log entries"),
      h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, entries.map((e) => h("tr", { class: e.status >= 400 ? "denied" : "" },
        h("td", { class: "time" }, time(e.time)), h("td", {}, e.subject || ""), h("td", {}, e.auth_method || ""),
        h("td", {}, e.remote || ""), h("td", {}, e.endpoint || ""),
        h("td", { class: "id" }, e.flow ? h("a", { href: href("flow", e.flow) }, e.flow) : ""),
        h("td", {}, e.query || ""), h("td", {}, e.format || ""), h("td", { class: "num" }, e.status ?? ""),
        h("td", { class: "num" }, e.flows ?? ""), h("td", { class: "num" }, e.packets ?? ""),
        h("td", { class: "num" }, e.bytes !== undefined ? bytes(e.bytes) : ""),
        h("td", { class: "num" }, e.duration_ms ?? ""), h("td", {}, e.error || "")))))),
    res.next ? h("nav", { class: "pager", "aria-label": "Pages" },
      before ? h("a", { href: href("audit") }, "Newest") : "", " ",
      h("a", { href: href("audit", "", { before: res.next }), rel: "next" }, "Older entries")) : "");
  announce(`${entries.length} audit entries`);
}
