// charts.js: small SVG charts drawn here (no library): a bar chart for
// the search histogram and a line chart for timelines and fleet rates.
// Each chart is an <svg role="img"> with a text summary for screen readers.

import { svg } from "./dom.js";

const W = 720, H = 160, PAD_L = 56, PAD_B = 22, PAD_T = 8, PAD_R = 8;

/** Rounds a maximum up to 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function shortNum(v) {
  if (v >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return String(Math.round(v * 100) / 100);
}

function frame(label, max, xLeft, xRight) {
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label,
    preserveAspectRatio: "none" });
  g.append(svg("title", {}, label));
  const y0 = H - PAD_B;
  for (const f of [0, 0.5, 1]) {
    const y = y0 - f * (y0 - PAD_T);
    g.append(svg("line", { x1: PAD_L, x2: W - PAD_R, y1: y, y2: y, class: "grid" }));
    g.append(svg("text", { x: PAD_L - 4, y: y + 4, class: "axis", "text-anchor": "end" }, shortNum(f * max)));
  }
  g.append(svg("text", { x: PAD_L, y: H - 6, class: "axis" }, xLeft));
  g.append(svg("text", { x: W - PAD_R, y: H - 6, class: "axis", "text-anchor": "end" }, xRight));
  return g;
}

/**
 * barChart(values, {label, xLeft, xRight, titles}) draws one bar per value;
 * titles[i] is the tooltip of bar i.
 */
export function barChart(values, opts) {
  const max = niceMax(Math.max(0, ...values));
  const g = frame(opts.label, max, opts.xLeft || "", opts.xRight || "");
  const y0 = H - PAD_B, plotW = W - PAD_L - PAD_R, bw = plotW / Math.max(1, values.length);
  values.forEach((v, i) => {
    const bh = (v / max) * (y0 - PAD_T);
    const bar = svg("rect", { x: PAD_L + i * bw + 0.5, y: y0 - bh, width: Math.max(1, bw - 1), height: bh, class: "bar" });
    if (opts.titles) bar.append(svg("title", {}, opts.titles[i]));
    g.append(bar);
  });
  return g;
}

/**
 * lineChart(series, {label, xLeft, xRight}) draws lines over shared x
 * values: series = [{name, xs: [...], ys: [...], cls}]. A legend follows.
 */
export function lineChart(series, opts) {
  const allX = series.flatMap((s) => s.xs), allY = series.flatMap((s) => s.ys);
  const max = niceMax(Math.max(0, ...allY));
  const g = frame(opts.label, max, opts.xLeft || "", opts.xRight || "");
  const x0 = Math.min(...allX), x1 = Math.max(...allX), span = x1 - x0 || 1;
  const y0 = H - PAD_B, plotW = W - PAD_L - PAD_R;
  series.forEach((s, k) => {
    const pts = s.xs.map((x, i) => `${(PAD_L + ((x - x0) / span) * plotW).toFixed(1)},${(y0 - (s.ys[i] / max) * (y0 - PAD_T)).toFixed(1)}`);
    if (pts.length === 1) pts.push(pts[0].replace(/^[^,]+/, (v) => String(Number(v) + 2)));
    g.append(svg("polyline", { points: pts.join(" "), class: "line " + (s.cls || "s" + k) }));
    g.append(svg("text", { x: PAD_L + 6 + k * 150, y: PAD_T + 12, class: "legend " + (s.cls || "s" + k) }, s.name));
  });
  return g;
}
