// Small SVG charts without a library: a daily min–max band with the mean line, and a sparkline.
const NS = "http://www.w3.org/2000/svg";
const el = (tag, attrs) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };

export function trendChart(points, { width = 320, height = 160, label = "" } = {}) {
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": label });
  const values = points.filter((p) => p.count > 0);
  if (!values.length) {
    const text = el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", fill: "#888" });
    text.textContent = "—";
    svg.append(text);
    return svg;
  }
  const lo = Math.min(...values.map((p) => p.min)), hi = Math.max(...values.map((p) => p.max));
  const pad = (hi - lo) * 0.1 || 1;
  const y = (v) => height - 20 - ((v - (lo - pad)) / (hi - lo + 2 * pad)) * (height - 30);
  const x = (i) => 30 + (i / Math.max(1, points.length - 1)) * (width - 40);
  let band = "", line = "";
  points.forEach((p, i) => {
    if (!p.count) return;
    band += `<line x1="${x(i)}" x2="${x(i)}" y1="${y(p.min)}" y2="${y(p.max)}" stroke="#9cc3ea" stroke-width="6" stroke-linecap="round"/>`;
    line += `${line ? "L" : "M"}${x(i).toFixed(1)},${y(p.mean).toFixed(1)}`;
  });
  svg.innerHTML = band + `<path d="${line}" fill="none" stroke="#0b5cad" stroke-width="2.5"/>` +
    `<text x="2" y="${y(hi) + 4}" font-size="11" fill="#555">${Math.round(hi)}</text>` +
    `<text x="2" y="${y(lo) + 4}" font-size="11" fill="#555">${Math.round(lo)}</text>`;
  svg.setAttribute("data-points", String(values.length));
  return svg;
}

export function sparkline(numbers, { width = 120, height = 36 } = {}) {
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "spark", "aria-hidden": "true" });
  if (numbers.length < 2) return svg;
  const lo = Math.min(...numbers), hi = Math.max(...numbers), span = hi - lo || 1;
  const d = numbers.map((v, i) => `${i ? "L" : "M"}${(i / (numbers.length - 1)) * width},${height - 4 - ((v - lo) / span) * (height - 8)}`).join("");
  svg.append(el("path", { d, fill: "none", stroke: "#0b5cad", "stroke-width": 2 }));
  return svg;
}

// "Nice" tick values covering lo..hi: 1, 2 or 5 times a power of ten apart, about `count` of them.
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) { hi = lo + 1; lo -= 1; }
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || 10 * power;
  const out = [];
  const last = Math.ceil(hi / step) * step; // the top tick at or above the highest value: nothing drawn off the axis
  for (let v = Math.floor(lo / step) * step; v <= last + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

// A chart with axes: time across (ticks as `timeLabel` says), the values up with their unit,
// each series' reference range shaded behind it. A point is {ts, min, mean, max, count}: one
// reading (min = mean = max) is a dot; a day of several is a min–max bar with the mean dot.
export function axisChart(series, { from, to, unit = "", label = "", timeTicks = [], timeLabel = String, width = 360, height = 200 } = {}) {
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart axis-chart", role: "img", "aria-label": label });
  const left = 44, right = 10, top = 18, bottom = 26;
  const values = series.flatMap((s) => s.points.flatMap((p) => [p.min, p.max]));
  const ranges = series.flatMap((s) => (s.range ? s.range : []));
  const all = [...values, ...ranges];
  const [lo0, hi0] = all.length ? [Math.min(...all), Math.max(...all)] : [0, 1];
  const pad = (hi0 - lo0) * 0.08 || 1;
  const yTicks = ticks(lo0 - pad, hi0 + pad, 5);
  const lo = yTicks[0], hi = yTicks[yTicks.length - 1];
  const x = (ts) => left + ((ts - from) / Math.max(1, to - from)) * (width - left - right);
  const y = (v) => top + (1 - (v - lo) / Math.max(1e-9, hi - lo)) * (height - top - bottom);
  const add = (tag, attrs, text) => { const e = el(tag, attrs); if (text !== undefined) e.textContent = text; svg.append(e); return e; };
  for (const s of series) {
    if (!s.range) continue;
    add("rect", { x: left, width: width - left - right, y: y(Math.min(hi, s.range[1])), height: Math.max(0, y(Math.max(lo, s.range[0])) - y(Math.min(hi, s.range[1]))), fill: s.color, "fill-opacity": 0.09, class: "reference" });
  }
  for (const v of yTicks) {
    add("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), stroke: "#e2e2e2" });
    add("text", { x: left - 4, y: y(v) + 4, "font-size": 11, "text-anchor": "end", fill: "#555", class: "y-tick" }, String(v));
  }
  for (const ts of timeTicks) {
    if (ts < from || ts > to) continue;
    add("line", { x1: x(ts), x2: x(ts), y1: height - bottom, y2: height - bottom + 4, stroke: "#888" });
    add("text", { x: x(ts), y: height - 8, "font-size": 11, "text-anchor": "middle", fill: "#555", class: "x-tick" }, timeLabel(ts));
  }
  add("line", { x1: left, x2: left, y1: top, y2: height - bottom, stroke: "#888" });
  add("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, stroke: "#888" });
  add("text", { x: 2, y: 11, "font-size": 11, fill: "#333", class: "unit" }, unit);
  let drawn = 0;
  for (const s of series) {
    const pts = s.points;
    if (pts.length > 1) add("path", { d: pts.map((p, i) => `${i ? "L" : "M"}${x(p.ts).toFixed(1)},${y(p.mean).toFixed(1)}`).join(""), fill: "none", stroke: s.color, "stroke-width": 1.5, "stroke-opacity": 0.7 });
    for (const p of pts) {
      if (p.max > p.min) add("line", { x1: x(p.ts), x2: x(p.ts), y1: y(p.min), y2: y(p.max), stroke: s.color, "stroke-width": 5, "stroke-opacity": 0.35, "stroke-linecap": "round" });
      add("circle", { cx: x(p.ts), cy: y(p.mean), r: 3, fill: s.color, class: "point" });
      drawn += 1;
    }
  }
  if (!drawn) add("text", { x: (left + width - right) / 2, y: (top + height - bottom) / 2, "text-anchor": "middle", fill: "#888", "font-size": 13 }, "—");
  svg.setAttribute("data-points", String(drawn));
  svg.setAttribute("data-unit", unit);
  return svg;
}
