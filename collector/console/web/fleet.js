// fleet.js: the sensors as the collector sees them (GET /api/v1/sensors)
// with their recent history (GET /api/v1/sensors/{id}/history): packet
// and byte rates, drops by stage, spool, last seen, and charts of each.

import { getJSON, url } from "./api.js";
import { h, fill, announce, errorBox, bytes, num, time } from "./dom.js";
import { lineChart } from "./charts.js";

const MINUTES = 60, REFRESH_MS = 15000;

export function title() {
  return "Fleet";
}

export async function render(main, r, current) {
  const body = h("div", {}, h("p", { class: "loading" }, "Loading sensors…"));
  const refresh = () => load(body, current);
  fill(main, h("h1", {}, "Fleet"),
    h("p", {}, "Sensors this collector has heard from, their rates over the last " + MINUTES + " minutes, drops by stage and spool. ",
      h("button", { type: "button", onclick: refresh }, "Refresh")),
    body);
  await load(body, current);
  const timer = setInterval(() => (current() ? load(body, current, true) : clearInterval(timer)), REFRESH_MS);
}

async function load(body, current, quiet = false) {
  let sensors;
  try {
    sensors = await getJSON("/api/v1/sensors");
  } catch (e) {
    if (current()) fill(body, errorBox(e, "Sensors"));
    return;
  }
  const histories = await Promise.all(sensors.map((s) =>
    getJSON(url("/api/v1/sensors/" + encodeURIComponent(s.id) + "/history", { minutes: MINUTES })).catch(() => null)));
  if (!current()) return;
  if (sensors.length === 0) {
    fill(body, h("p", {}, "No sensor has connected to this collector yet."));
    return;
  }
  fill(body, overview(sensors, histories), sensors.map((s, i) => card(s, histories[i])));
  if (!quiet) announce(`${sensors.length} sensor${sensors.length === 1 ? "" : "s"}`);
}

/** Drops by stage: the latest history sample, else the reported counters. */
function drops(s, hist) {
  const last = hist && hist.length ? hist[hist.length - 1] : null;
  if (last && last.drops) return last.drops;
  const out = {};
  for (const [k, v] of Object.entries(s.stats || {})) if (/drop|cut|lost/.test(k)) out[k] = v;
  return out;
}

function spool(s, hist) {
  const last = hist && hist.length ? hist[hist.length - 1] : null;
  if (last && last.spool_bytes !== undefined) return last.spool_bytes;
  return (s.stats || {}).spool_bytes;
}

function rate(hist, key) {
  const last = hist && hist.length ? hist[hist.length - 1] : null;
  return last && last[key] !== undefined ? last[key] : null;
}

function overview(sensors, histories) {
  const cols = ["Sensor", "State", "Last seen", "Packets/s", "Bytes/s", "Drops by stage", "Spool", "Flows received", "Blocks", "Block bytes"];
  return h("div", { class: "table-wrap" }, h("table", { class: "fleet" },
    h("caption", {}, "Sensors"),
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, sensors.map((s, i) => {
      const hist = histories[i], d = drops(s, hist), pps = rate(hist, "packets_per_s"), bps = rate(hist, "bytes_per_s"), sp = spool(s, hist);
      return h("tr", {},
        h("th", { scope: "row" }, h("a", { href: "#sensor-" + s.id }, s.id), s.hostname ? h("span", { class: "enrich" }, s.hostname) : ""),
        h("td", { class: s.connected ? "ok" : "warn" }, s.connected ? "connected" : "disconnected"),
        h("td", { class: "time" }, time(s.last_seen)),
        h("td", { class: "num" }, pps === null ? "—" : num(Math.round(pps))),
        h("td", { class: "num" }, bps === null ? "—" : bytes(bps) + "/s"),
        h("td", {}, Object.keys(d).length ? Object.entries(d).map(([k, v]) => h("span", { class: "drop" + (v ? " warn" : "") }, `${k} ${num(v)}`)) : "none reported"),
        h("td", { class: "num" }, sp === undefined ? "—" : bytes(sp)),
        h("td", { class: "num" }, num(s.flows)), h("td", { class: "num" }, num(s.blocks)), h("td", { class: "num" }, bytes(s.bytes)));
    }))));
}

function card(s, hist) {
  const sec = h("section", { class: "sensor", id: "sensor-" + s.id, "aria-labelledby": "sensor-h-" + s.id },
    h("h2", { id: "sensor-h-" + s.id }, "Sensor " + s.id),
    h("p", { class: "meta" }, [s.hostname, s.version && "version " + s.version, s.remote_addr && "from " + s.remote_addr,
      s.connected_since && "connected since " + time(s.connected_since), s.last_error && "last error: " + s.last_error].filter(Boolean).join(" · ")));
  if (!hist || hist.length < 2) {
    sec.append(h("p", { class: "hint" }, hist && hist.length === 1 ?
      "One sample so far (" + time(hist[0].time) + "): the charts start with the second." : "No history yet for this sensor."));
    return sec;
  }
  const xs = hist.map((p) => new Date(p.time).getTime());
  const x = { xLeft: time(hist[0].time), xRight: time(hist[hist.length - 1].time) };
  const stages = [...new Set(hist.flatMap((p) => Object.keys(p.drops || {})))];
  sec.append(h("div", { class: "charts" },
    lineChart([{ name: "packets/s", xs, ys: hist.map((p) => p.packets_per_s || 0), cls: "s0" }], { ...x, width: 600, label: "Packets per second of sensor " + s.id }),
    lineChart([{ name: "bytes/s", xs, ys: hist.map((p) => p.bytes_per_s || 0), cls: "s1" }], { ...x, width: 600, label: "Bytes per second of sensor " + s.id }),
    stages.length ? lineChart(stages.map((st, k) => ({ name: "drops: " + st, xs, ys: hist.map((p) => (p.drops || {})[st] || 0), cls: "s" + (k % 4) })),
      { ...x, width: 600, label: "Drops by stage of sensor " + s.id + ": " + stages.join(", ") }) : "",
    lineChart([{ name: "spool bytes", xs, ys: hist.map((p) => p.spool_bytes || 0), cls: "s3" }], { ...x, width: 600, label: "Spool bytes of sensor " + s.id })));
  return sec;
}
