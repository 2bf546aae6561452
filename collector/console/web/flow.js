// flow.js: one flow. Its ECS record with every field, the go-tsz
// timeline as charts, its packets (table, one packet's layers and
// hex+ASCII), the conversation reassembled both ways (Follow Stream)
// and pcap/pcapng downloads. Packets, stream and downloads need pcap:read
// and are audited by the collector.

import { getJSON, flowPath, url } from "./api.js";
import { h, fill, announce, errorBox, bytes, num, duration, time, at } from "./dom.js";
import { href } from "./nav.js";
import { timeBars } from "./charts.js";
import { downloadButtons } from "./download.js";
import { endpoint, service } from "./search.js";

const PACKET_LIMIT = 1000;

/** The flow shown, so that picking a packet redraws only its detail. */
let shown = { id: "", detail: null };

export function title(r) {
  return "Flow " + r.arg;
}

/** Picking another packet of the same flow keeps the page (a promise), else null. */
export function update(main, r) {
  if (r.arg !== shown.id || !shown.detail || !main.contains(shown.detail)) return null;
  return loadPacket(shown.detail, r.arg, r.params.get("packet"));
}

export async function render(main, r, current) {
  const id = r.arg;
  shown = { id: "", detail: null };
  if (!id) {
    fill(main, h("p", {}, "Paste a Community ID or flow ID into the box above to open a flow."));
    return;
  }
  let rec;
  try {
    rec = await getJSON(flowPath(id));
  } catch (e) {
    if (!current()) return;
    const msg = e.status === 404 ? "No flow has the ID " + id + "." : e.status === 400 ? id + " is not a Community ID or flow ID: " + e.message : "";
    fill(main, h("h1", {}, "Flow"), msg ? h("p", { class: "error", role: "alert" }, msg) : errorBox(e, "Flow"));
    return;
  }
  if (!current()) return;
  const fid = at(rec, "tapir.flow_id") || id;
  const detail = h("section", { class: "packet-detail", "aria-labelledby": "pkt-h", "aria-live": "polite" });
  const packets = h("section", { class: "packets", "aria-labelledby": "packets-h" },
    h("h2", { id: "packets-h" }, "Packets"), h("p", { class: "loading" }, "Loading packets…"));
  const stream = h("section", { class: "stream", "aria-labelledby": "stream-h" },
    h("h2", { id: "stream-h" }, "Follow " + (at(rec, "network.transport") || "").toUpperCase() + " stream"),
    h("p", { class: "loading" }, "Reassembling…"));
  fill(main,
    heading(rec),
    h("section", { class: "downloads", "aria-label": "Downloads" },
      downloadButtons("Download this flow", "flow-" + fid, (format) => url("/api/v1/pcap", { flow: id, format }))),
    timeline(rec),
    packets, detail, stream,
    fieldsTable(rec));
  shown = { id, detail };
  announce("Flow " + fid + " opened");
  main.focus();
  await Promise.all([loadPackets(packets, id, current), loadStream(stream, id, current),
    loadPacket(detail, id, r.params.get("packet"))]);
}

function heading(rec) {
  const rows = [
    ["Service", service(rec)],
    ["Start", time(at(rec, "event.start"))],
    ["End", time(at(rec, "event.end"))],
    ["Duration", duration(at(rec, "event.duration"))],
    ["Packets", num(at(rec, "network.packets"))],
    ["Bytes", bytes(at(rec, "network.bytes"))],
    ["Sensor", at(rec, "tapir.sensor_id") || ""],
    ["Flow ID", at(rec, "tapir.flow_id") || ""],
    ["Community ID", at(rec, "network.community_id") || ""],
  ];
  return h("header", { class: "flow-head" },
    h("h1", {}, "Flow ", h("span", { class: "ends" }, endpoint(rec.source)), " → ", h("span", { class: "ends" }, endpoint(rec.destination))),
    h("dl", { class: "summary" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

function timeline(rec) {
  const tl = at(rec, "tapir.timeline");
  const sec = h("section", { class: "timeline", "aria-labelledby": "tl-h" }, h("h2", { id: "tl-h" }, "Timeline"));
  if (!tl || !tl.offset_ms || tl.offset_ms.length === 0) {
    sec.append(h("p", { class: "hint" }, tl && tl.error ? "The timeline does not decode: " + tl.error : "The sensor recorded no timeline for this flow."));
    return sec;
  }
  const xs = tl.offset_ms, step = tl.interval_ms || 1, end = xs[xs.length - 1] + step;
  const x = { xLeft: "+0 ms", xRight: "+" + end + " ms", x0: Math.min(0, xs[0]), x1: end };
  const when = (i) => `+${xs[i]} ms: `;
  sec.append(
    timeBars(xs, tl.packets, step, { ...x, cls: "s0", legend: "packets per " + step + " ms",
      titles: tl.packets.map((v, i) => when(i) + num(v) + " packets"),
      label: `Packets per ${step} ms interval, ${tl.points} intervals with packets, at most ${Math.max(...tl.packets)}` }),
    timeBars(xs, tl.bytes, step, { ...x, cls: "s1", legend: "bytes per " + step + " ms",
      titles: tl.bytes.map((v, i) => when(i) + bytes(v)),
      label: `Bytes per ${step} ms interval, at most ${bytes(Math.max(...tl.bytes))}` }),
    tl.cut ? h("p", { class: "hint" }, num(tl.cut) + " later intervals were past the sensor's cap.") : "");
  return sec;
}

async function loadPackets(sec, id, current) {
  let res;
  try {
    res = await getJSON(url(flowPath(id, "/packets"), { limit: PACKET_LIMIT }));
  } catch (e) {
    if (current()) sec.lastChild.replaceWith(denied(e, "Packets"));
    return;
  }
  if (!current()) return;
  const list = res.packets || [];
  sec.lastChild.replaceWith(h("div", { class: "table-wrap" },
    h("table", { class: "pkts" },
      h("caption", {}, `${num(list.length)} packets${res.more ? " (first " + PACKET_LIMIT + "; download the pcap for all)" : ""}`),
      h("thead", {}, h("tr", {}, ["No.", "Time", "Direction", "Length", "Captured", "Summary"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, list.map((p) => h("tr", { class: p.dir },
        h("td", { class: "num" }, h("a", { href: href("flow", id, { packet: p.n }), "aria-label": "Packet " + p.n + " details" }, p.n)),
        h("td", { class: "time" }, time(p.time)),
        h("td", { class: "dir" }, p.dir === "c2s" ? "client → server" : p.dir === "s2c" ? "server → client" : p.dir || ""),
        h("td", { class: "num" }, p.length), h("td", { class: "num" }, p.captured),
        h("td", { class: "summary" }, p.summary)))))));
}

async function loadPacket(sec, id, n) {
  if (!n) {
    fill(sec, h("h2", { id: "pkt-h" }, "Packet bytes"), h("p", { class: "hint" }, "Pick a packet number above to see its layers and bytes."));
    return;
  }
  fill(sec, h("h2", { id: "pkt-h" }, "Packet " + n), h("p", { class: "loading" }, "Loading…"));
  let p;
  try {
    p = await getJSON(flowPath(id, "/packets/" + encodeURIComponent(n)));
  } catch (e) {
    sec.lastChild.replaceWith(denied(e, "Packet " + n));
    return;
  }
  const data = Uint8Array.from(atob(p.data || ""), (c) => c.charCodeAt(0));
  fill(sec, h("h2", { id: "pkt-h", tabindex: "-1" }, `Packet ${p.n}: ${p.length} bytes on the wire, ${p.captured} captured, ${time(p.time)}`),
    h("ol", { class: "layers", "aria-label": "Layers" }, (p.layers || []).map((l) => h("li", {}, h("strong", {}, l.name), " ", l.summary || ""))),
    h("pre", { class: "hex", "aria-label": "Hex and ASCII of packet " + p.n }, hexdump(data)));
  sec.querySelector("#pkt-h").focus();
}

/** Wireshark's bytes pane: offset, 16 hex bytes (8 + 8), ASCII. */
export function hexdump(data) {
  const lines = [];
  for (let off = 0; off < data.length; off += 16) {
    const chunk = data.subarray(off, off + 16);
    let hex = "", ascii = "";
    for (let i = 0; i < 16; i++) {
      hex += i < chunk.length ? chunk[i].toString(16).padStart(2, "0") + " " : "   ";
      if (i === 7) hex += " ";
      if (i < chunk.length) ascii += chunk[i] >= 0x20 && chunk[i] < 0x7f ? String.fromCharCode(chunk[i]) : ".";
    }
    lines.push(off.toString(16).padStart(4, "0") + "  " + hex + " " + ascii);
  }
  return lines.join("\n");
}

async function loadStream(sec, id, current) {
  let s;
  try {
    s = await getJSON(url(flowPath(id, "/stream"), { format: "json" }));
  } catch (e) {
    if (!current()) return;
    sec.lastChild.replaceWith(e.code === "not_a_stream" ? h("p", { class: "hint" }, "Neither TCP nor UDP: there is no stream to follow.") : denied(e, "Stream"));
    return;
  }
  if (!current()) return;
  const chunks = (s.chunks || []).map((c) => h("span", { class: "chunk " + c.dir + (c.missing ? " missing" : ""),
    title: (c.dir === "c2s" ? "client → server" : "server → client") + (c.missing ? " (bytes not captured)" : "") },
  printable(atob(c.data || ""))));
  sec.lastChild.replaceWith(h("div", {},
    h("p", { class: "legend" },
      h("span", { class: "chunk c2s" }, `client ${s.client}: ${num(s.client_bytes)} bytes`), " ",
      h("span", { class: "chunk s2c" }, `server ${s.server}: ${num(s.server_bytes)} bytes`),
      s.complete === false ? h("span", { class: "warn" }, " (partial: the retrieval caps were reached)") : ""),
    chunks.length ? h("pre", { class: "follow", tabindex: "0", "aria-label": "Conversation, client in red, server in blue" }, chunks) :
      h("p", { class: "hint" }, "No payload in either direction.")));
}

/**
 * One character per byte, as Wireshark's ASCII view and tshark's
 * follow,tcp,ascii show it: printable ASCII, CR and LF as they are, every
 * other byte as ".".
 */
export function printable(binary) {
  return binary.replace(/[^\x20-\x7e\r\n]/g, ".");
}

/** An error for a pcap:read section, saying plainly when the role is missing. */
function denied(e, what) {
  if (e.status === 403) return h("p", { class: "error", role: "alert" }, what + ": your token lacks the pcap:read role, so packets, the stream and downloads are refused.");
  return errorBox(e, what);
}

/** Every field of the record, dotted paths and values, in a table. */
function fieldsTable(rec) {
  const rows = [];
  flatten(rec, "", rows);
  return h("section", { class: "fields", "aria-labelledby": "fields-h" },
    h("h2", { id: "fields-h" }, "All fields"),
    h("table", {}, h("caption", { class: "visually-hidden" }, "Every ECS and enrichment field of the flow record"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Value"))),
      h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v))))));
}

function flatten(v, prefix, out) {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (prefix === "tapir." && k === "timeline") {
        out.push(["tapir.timeline", `${x.points} intervals of ${x.interval_ms} ms (charted above)`]);
        continue;
      }
      flatten(x, prefix + k + ".", out);
    }
    return;
  }
  const key = prefix.slice(0, -1);
  if (Array.isArray(v) && v.some((x) => x !== null && typeof x === "object")) {
    v.forEach((x, i) => flatten(x, `${key}[${i}].`, out));
    return;
  }
  out.push([key, Array.isArray(v) ? v.join(", ") : String(v)]);
}
