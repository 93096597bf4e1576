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
