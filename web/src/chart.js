// Charts with uPlot: the usage of a meter per bucket (bars), and the
// small 7-day sparkline of the meters list.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h, fmtNum, fmtCompact } from "./dom.js";

const HOUR = 3600, DAY = 86400;

// series turns backtest buckets into evenly spaced x/y arrays over
// [from, to): buckets without a matched event are 0 (absent in the API).
export function series(result, from, to, bucket) {
  const step = bucket === "day" ? DAY : HOUR;
  const start = Math.floor(new Date(from).getTime() / 1000 / step) * step;
  const end = new Date(to).getTime() / 1000;
  const byStart = new Map((result?.buckets || []).map((b) => [new Date(b.start).getTime() / 1000, b]));
  const xs = [], ys = [], ev = [];
  for (let x = start; x < end && xs.length < 2000; x += step) {
    const b = byStart.get(x);
    xs.push(x);
    ys.push(b ? b.value : 0);
    ev.push(b ? b.events : 0);
  }
  return { xs, ys, ev, step };
}

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// usageChart draws bars into el, sized to its width; it redraws on
// resize. Returns {update(result, from, to, bucket), destroy()}.
export function usageChart(el, { height = 240 } = {}) {
  let plot = null, data = null;
  const tip = h("div.chart-tip", { hidden: true });
  el.append(tip);
  const bars = uPlot.paths.bars({ size: [0.72, 48], gap: 1 });
  const make = (d) => {
    const accent = css("--accent") || "#4f46e5";
    const grid = css("--grid") || "#eef0f4";
    const axis = css("--muted") || "#6b7280";
    const opts = {
      width: Math.max(280, el.clientWidth),
      height,
      padding: [12, 8, 0, 0],
      cursor: { y: false, points: { show: false }, drag: { x: false, y: false } },
      legend: { show: false },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: axis, grid: { show: false }, ticks: { stroke: grid }, font: "11px Inter Variable, sans-serif", space: 60 },
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { show: false }, font: "11px Inter Variable, sans-serif", size: 56, values: (u, vs) => vs.map(fmtCompact) },
      ],
      series: [{}, { label: "usage", fill: accent + "cc", stroke: accent, width: 0, paths: bars, points: { show: false } }],
      hooks: {
        setCursor: [
          (u) => {
            const i = u.cursor.idx;
            if (i == null || !data) return (tip.hidden = true);
            const t = new Date(data.xs[i] * 1000);
            const label = data.step === DAY ? t.toISOString().slice(0, 10) : t.toISOString().slice(0, 13).replace("T", " ") + ":00";
            tip.hidden = false;
            tip.replaceChildren(h("b", fmtNum(data.ys[i])), h("span", `${fmtNum(data.ev[i])} matched · ${label} UTC`));
            const left = u.valToPos(data.xs[i], "x") + u.bbox.left / devicePixelRatio;
            tip.style.left = Math.min(Math.max(left, 70), el.clientWidth - 70) + "px";
          },
        ],
      },
    };
    return new uPlot(opts, [d.xs, d.ys], el);
  };
  const ro = new ResizeObserver(() => plot && plot.setSize({ width: Math.max(280, el.clientWidth), height }));
  ro.observe(el);
  el.addEventListener("mouseleave", () => (tip.hidden = true));
  return {
    update(result, from, to, bucket) {
      data = series(result, from, to, bucket);
      if (plot) plot.destroy();
      plot = make(data);
    },
    destroy() {
      ro.disconnect();
      plot?.destroy();
    },
  };
}

// sparkline draws a tiny area chart of values (no axes), as SVG: cheap
// enough for one per row.
export function sparkline(values, { width = 120, height = 28 } = {}) {
  const n = values.length;
  const max = Math.max(...values, 0);
  const pts = values.map((v, i) => [n > 1 ? (i / (n - 1)) * width : width / 2, height - 2 - (max > 0 ? (v / max) * (height - 4) : 0)]);
  const line = pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join("");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "usage over the last 7 days: " + values.map(fmtNum).join(", "));
  svg.innerHTML = n ? `<path class="area" d="${line}L${width} ${height}L0 ${height}Z"/><path class="line" d="${line}"/>` : "";
  return svg;
}

// groupBars lists the top customers as horizontal bars; calls says how
// many calls each matched (redundant for a count meter).
export function groupBars(groups, calls) {
  if (!groups?.length) return h("p.muted", "No customer matched.");
  const max = Math.max(...groups.map((g) => g.value || 0), 0);
  return h(
    "ol.bars",
    groups.map((g) =>
      h(
        "li",
        h("span.key", g.key || h("i", "(no customer id)")),
        h("span.bar", h("i", { style: { width: (max ? (100 * (g.value || 0)) / max : 0) + "%" } })),
        h("span.val", fmtNum(g.value)),
        calls ? h("span.calls", fmtNum(g.events) + " calls") : null,
      ),
    ),
  );
}
