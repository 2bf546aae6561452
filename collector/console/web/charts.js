// charts.js: small SVG charts drawn here (no library): bars for the
// search histogram and flow timelines, lines for fleet rates. Each chart
// is an <svg role="img"> with a text summary for screen readers; it
// scales to its box without distorting its text (the viewBox is about
// the size the chart is shown at: opts.width, default 1200).

import { svg } from "./dom.js";

const H = 170, PAD_L = 56, PAD_B = 22, PAD_T = 10, PAD_R = 10;

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

/** The axes of a chart: {g, x(v), y(v)} over [x0, x1] and [0, max]. */
function frame(opts, max, x0, x1) {
  const W = opts.width || 1200;
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": opts.label });
  g.append(svg("title", {}, opts.label));
  const y0 = H - PAD_B, plotW = W - PAD_L - PAD_R, span = x1 - x0 || 1;
  for (const f of [0, 0.5, 1]) {
    const y = y0 - f * (y0 - PAD_T);
    g.append(svg("line", { x1: PAD_L, x2: W - PAD_R, y1: y, y2: y, class: "grid" }));
    g.append(svg("text", { x: PAD_L - 4, y: y + 4, class: "axis", "text-anchor": "end" }, shortNum(f * max)));
  }
  g.append(svg("text", { x: PAD_L, y: H - 6, class: "axis" }, opts.xLeft || ""));
  g.append(svg("text", { x: W - PAD_R, y: H - 6, class: "axis", "text-anchor": "end" }, opts.xRight || ""));
  return {
    g, plotW,
    x: (v) => PAD_L + ((v - x0) / span) * plotW,
    y: (v) => y0 - (v / max) * (y0 - PAD_T),
    y0,
  };
}

/**
 * barChart(values, {label, xLeft, xRight, titles, width}) draws one bar
 * per value, side by side; titles[i] is the tooltip of bar i.
 */
export function barChart(values, opts) {
  const xs = values.map((_, i) => i);
  return timeBars(xs, values, 1, { ...opts, x1: values.length });
}

/**
 * timeBars(xs, ys, step, opts) draws a bar of width step at each x (from
 * opts.x0, default the first x, to opts.x1, default the last x + step):
 * intervals with nothing are left empty, not bridged by a line.
 */
export function timeBars(xs, ys, step, opts) {
  const x0 = opts.x0 ?? (xs.length ? xs[0] : 0), x1 = opts.x1 ?? (xs.length ? xs[xs.length - 1] + step : 1);
  const f = frame(opts, niceMax(Math.max(0, ...ys)), x0, x1);
  const bw = Math.max(1, (step / (x1 - x0 || 1)) * f.plotW - 1);
  xs.forEach((x, i) => {
    const bar = svg("rect", { x: f.x(x) + 0.5, y: f.y(ys[i]), width: bw, height: f.y0 - f.y(ys[i]), class: "bar " + (opts.cls || "") });
    if (opts.titles) bar.append(svg("title", {}, opts.titles[i]));
    f.g.append(bar);
  });
  if (opts.legend) f.g.append(svg("text", { x: PAD_L + 6, y: PAD_T + 12, class: "legend " + (opts.cls || "") }, opts.legend));
  return f.g;
}

/**
 * lineChart(series, {label, xLeft, xRight, width}) draws lines over
 * shared x values: series = [{name, xs: [...], ys: [...], cls}], with a
 * legend.
 */
export function lineChart(series, opts) {
  const allX = series.flatMap((s) => s.xs), allY = series.flatMap((s) => s.ys);
  const f = frame(opts, niceMax(Math.max(0, ...allY)), Math.min(...allX), Math.max(...allX));
  series.forEach((s, k) => {
    const pts = s.xs.map((x, i) => `${f.x(x).toFixed(1)},${f.y(s.ys[i]).toFixed(1)}`);
    f.g.append(svg("polyline", { points: pts.join(" "), class: "line " + (s.cls || "s" + k) }));
    f.g.append(svg("text", { x: PAD_L + 6 + k * 150, y: PAD_T + 12, class: "legend " + (s.cls || "s" + k) }, s.name));
  });
  return f.g;
}
