// memglass dashboard charts: small hand-written SVG (no library, nothing fetched).
// Charts.donut draws a two-ring pie (groups inside, their parts outside); Charts.line a
// time series with byte axes. Both show a tooltip on hover.
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

  function bytes(v) {
    if (v === null || v === undefined || isNaN(v)) return "–";
    let i = 0, x = Math.abs(v);
    while (x >= 1024 && i < UNITS.length - 1) { x /= 1024; i++; }
    const digits = i === 0 ? 0 : x >= 100 ? 0 : x >= 10 ? 1 : 2;
    return (v < 0 ? "-" : "") + x.toFixed(digits) + " " + UNITS[i];
  }

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  const tip = () => document.getElementById("tooltip");
  function showTip(event, html) {
    const t = tip();
    if (!t) return;
    t.innerHTML = html;
    t.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - t.offsetWidth - 8);
    t.style.left = x + "px";
    t.style.top = (event.clientY + 14) + "px";
  }
  function hideTip() { const t = tip(); if (t) t.hidden = true; }
  window.addEventListener("hashchange", hideTip);

  function arc(cx, cy, r0, r1, a0, a1) {
    // One ring segment from angle a0 to a1 (radians, 0 = 12 o'clock).
    const large = a1 - a0 > Math.PI ? 1 : 0;
    const p = (r, a) => [cx + r * Math.sin(a), cy - r * Math.cos(a)];
    const [x0, y0] = p(r1, a0), [x1, y1] = p(r1, a1), [x2, y2] = p(r0, a1), [x3, y3] = p(r0, a0);
    return `M${x0},${y0} A${r1},${r1} 0 ${large} 1 ${x1},${y1} L${x2},${y2} A${r0},${r0} 0 ${large} 0 ${x3},${y3} Z`;
  }

  // groups: [{label, color, parts: [{label, value, color}]}]; a group's value is the sum
  // of its parts. The center says `center` (e.g. the total).
  function donut(container, groups, opts = {}) {
    const size = opts.size || 240, c = size / 2;
    const svg = el("svg", { viewBox: `0 0 ${size} ${size}`, width: size, height: size, role: "img",
      "aria-label": opts.label || "pie chart", class: "donut" });
    const total = groups.reduce((s, g) => s + g.parts.reduce((t, p) => t + Math.max(0, p.value || 0), 0), 0);
    let a = 0;
    for (const g of groups) {
      const gv = g.parts.reduce((t, p) => t + Math.max(0, p.value || 0), 0);
      if (gv <= 0 || total <= 0) continue;
      const ga1 = a + (gv / total) * 2 * Math.PI;
      const inner = el("path", { d: arc(c, c, c * 0.42, c * 0.66, a, Math.min(ga1, a + 2 * Math.PI - 1e-4)),
        fill: g.color, stroke: "#fff", "stroke-width": 1.5, "data-label": g.label, "data-value": gv }, svg);
      hover(inner, `<b>${g.label}</b><div>${bytes(gv)} · ${(100 * gv / total).toFixed(1)}%</div>`);
      let b = a;
      for (const p of g.parts) {
        const v = Math.max(0, p.value || 0);
        if (v <= 0) continue;
        const b1 = b + (v / total) * 2 * Math.PI;
        const outer = el("path", { d: arc(c, c, c * 0.69, c * 0.98, b, Math.min(b1, b + 2 * Math.PI - 1e-4)),
          fill: p.color, stroke: "#fff", "stroke-width": 1, "data-label": p.label, "data-value": v }, svg);
        hover(outer, `<b>${g.label} › ${p.label}</b><div>${bytes(v)} · ${(100 * v / total).toFixed(1)}%</div>`);
        b = b1;
      }
      a = ga1;
    }
    const t1 = el("text", { x: c, y: c - 4, "text-anchor": "middle", "font-size": 18, "font-weight": 650, fill: "#1f2933" }, svg);
    t1.textContent = opts.center || bytes(total);
    const t2 = el("text", { x: c, y: c + 14, "text-anchor": "middle", "font-size": 11, fill: "#667085" }, svg);
    t2.textContent = opts.centerLabel || "total";
    container.appendChild(svg);
    return svg;
  }

  function hover(node, html) {
    node.addEventListener("mousemove", (e) => showTip(e, html));
    node.addEventListener("mouseleave", hideTip);
  }

  function niceStep(max, ticks) {
    // A round byte step (powers of two of KiB/MiB/GiB, times 1, 2, 5) giving ~`ticks` lines.
    const raw = max / ticks;
    let unit = 1;
    while (unit * 1024 <= raw) unit *= 1024;
    for (const m of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1024]) if (unit * m >= raw) return unit * m;
    return unit * 1024;
  }

  function clock(t, seconds) {
    const d = new Date(t * 1000);
    const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (seconds) opts.second = "2-digit";
    return d.toLocaleTimeString([], opts);
  }

  // series: [{label, color, dashed, points: [[t, v], ...]}]
  function line(container, series, opts = {}) {
    // Drawn at the container's pixel width, so text keeps its size on any screen.
    const W = opts.width || Math.max(360, Math.round(container.clientWidth || 760));
    const H = opts.height || 260, L = 70, R = 12, T = 10, B = 26;
    const all = series.flatMap((s) => s.points.filter((p) => p[1] !== null && p[1] !== undefined));
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "time series" });
    if (all.length === 0) {
      const t = el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, svg);
      t.textContent = "no history yet";
      container.appendChild(svg);
      return svg;
    }
    let t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
    if (opts.from !== undefined) t0 = Math.min(t0, opts.from);
    if (t1 === t0) t1 = t0 + 1;
    const vmax = Math.max(...all.map((p) => p[1]), 1);
    const step = niceStep(vmax, 4);
    const top = Math.ceil(vmax / step) * step;
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / top) * (H - T - B);
    const grid = el("g", { class: "grid" }, svg);
    for (let v = 0; v <= top + 1; v += step) {
      el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v) }, grid);
      const label = el("text", { x: L - 8, y: y(v) + 4, "text-anchor": "end" }, svg);
      label.textContent = bytes(v);
    }
    const span = t1 - t0, nt = 6;
    let previous = "";
    for (let i = 0; i <= nt; i++) {
      const t = t0 + (span * i) / nt;
      const text = clock(t, span < 900);
      if (text === previous) continue; // short spans: one label per distinct time
      previous = text;
      const label = el("text", { x: x(t), y: H - 6, "text-anchor": i === 0 ? "start" : i === nt ? "end" : "middle" }, svg);
      label.textContent = text;
    }
    for (const s of series) {
      const pts = s.points.filter((p) => p[1] !== null && p[1] !== undefined);
      if (pts.length === 0) continue;
      const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
      el("path", { d, fill: "none", stroke: s.color, "stroke-width": s.width || 2,
        "stroke-dasharray": s.dashed ? "6 4" : "", "stroke-linejoin": "round", "data-series": s.label }, svg);
      if (pts.length === 1) el("circle", { cx: x(pts[0][0]), cy: y(pts[0][1]), r: 3, fill: s.color }, svg);
    }
    // Hover: a crosshair at the nearest sample time, with every series' value.
    const cross = el("line", { y1: T, y2: H - B, stroke: "#98a2b3", "stroke-width": 1, visibility: "hidden" }, svg);
    const overlay = el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "transparent" }, svg);
    const times = [...new Set(all.map((p) => p[0]))].sort((a, b) => a - b);
    overlay.addEventListener("mousemove", (e) => {
      const box = svg.getBoundingClientRect();
      const t = t0 + ((e.clientX - box.left) * (W / box.width) - L) / (W - L - R) * (t1 - t0);
      let best = times[0];
      for (const c of times) if (Math.abs(c - t) < Math.abs(best - t)) best = c;
      cross.setAttribute("x1", x(best)); cross.setAttribute("x2", x(best));
      cross.setAttribute("visibility", "visible");
      const rows = series.map((s) => {
        const p = s.points.find((q) => q[0] === best);
        return p ? `<div class="row"><span><span class="swatch" style="background:${s.color}"></span>${s.label}</span><b>${bytes(p[1])}</b></div>` : "";
      }).join("");
      showTip(e, `<div>${new Date(best * 1000).toLocaleString()}</div>${rows}`);
    });
    overlay.addEventListener("mouseleave", () => { cross.setAttribute("visibility", "hidden"); hideTip(); });
    container.appendChild(svg);
    const legend = document.createElement("div");
    legend.className = "chart-legend";
    legend.innerHTML = series.map((s) => s.dashed
      ? `<span><span class="dash" style="border-color:${s.color}"></span>${s.label}</span>`
      : `<span><span class="swatch" style="background:${s.color}"></span>${s.label}</span>`).join("");
    container.appendChild(legend);
    return svg;
  }

  // One eviction signal as a horizontal bar of its capacity: the working set from the
  // left, what is available after it, and the threshold zone at the right end (kubelet
  // evicts once the working set reaches into it). The gap between the working set and
  // the zone is the margin. s: {capacity, working_set, available, threshold, margin, met}.
  function signalBar(container, s, opts = {}) {
    const W = opts.width || Math.max(360, Math.round(container.clientWidth || 640));
    const H = 46, L = 0, R = 0, T = 6, BH = 20;
    const cap = Math.max(s.capacity, s.working_set, 1);
    const x = (v) => L + (Math.max(0, Math.min(v, cap)) / cap) * (W - L - R);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "signal",
      "aria-label": opts.label || "eviction signal", "data-margin": s.margin, "data-met": s.met });
    el("rect", { x: L, y: T, width: W - L - R, height: BH, rx: 4, fill: "#eef0f3" }, svg);
    const zone = el("rect", { x: x(cap - s.threshold), y: T, width: x(cap) - x(cap - s.threshold), height: BH,
      fill: "#f5c2c2", "data-part": "threshold" }, svg);
    hover(zone, `<b>threshold</b><div>${bytes(s.threshold)}: kubelet evicts when available falls below it</div>`);
    const used = el("rect", { x: L, y: T, width: x(s.working_set) - L, height: BH, rx: 4,
      fill: s.met ? "#d64545" : "#4e79a7", "data-part": "working_set", "data-value": s.working_set }, svg);
    hover(used, `<b>working set</b><div>${bytes(s.working_set)} of ${bytes(s.capacity)}</div>`);
    if (s.margin > 0) {
      const gap = el("rect", { x: x(s.working_set), y: T + BH / 2 - 2, width: x(cap - s.threshold) - x(s.working_set),
        height: 4, fill: "#3f9a4b", "data-part": "margin", "data-value": s.margin }, svg);
      hover(gap, `<b>margin</b><div>${bytes(s.margin)} more working set before kubelet evicts</div>`);
    }
    el("line", { x1: x(cap - s.threshold), x2: x(cap - s.threshold), y1: T - 4, y2: T + BH + 4, stroke: "#d64545", "stroke-width": 2 }, svg);
    const left = el("text", { x: L, y: H - 2, "text-anchor": "start", "font-size": 11, fill: "#667085" }, svg);
    left.textContent = `working set ${bytes(s.working_set)}`;
    const right = el("text", { x: W - R, y: H - 2, "text-anchor": "end", "font-size": 11, fill: "#667085" }, svg);
    right.textContent = `capacity ${bytes(s.capacity)}`;
    container.appendChild(svg);
    return svg;
  }

  return { bytes, donut, line, signalBar };
})();
