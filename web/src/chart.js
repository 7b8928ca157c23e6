// Charts with uPlot: the usage of a meter per bucket (bars), and the
// small 7-day sparkline of the meters list.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h, replace, fmtNum, fmtCompact, fmtDay, fmtClock, fmtHour } from "./dom.js";

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

// Buckets are UTC hours and days: the axis, its ticks and the tooltips
// are UTC too, whatever the browser's time zone.
const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");

// intIncrs are the y axis steps for whole numbers (counts): never 0.2.
const intIncrs = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500].flatMap((x) => [x, x * 1e3, x * 1e6, x * 1e9]).sort((a, b) => a - b);

// xLabel names an x tick: a day ("24 Nov") at midnight, else the hour.
const xLabel = (t) => (t % DAY === 0 ? fmtDay(t * 1000, true) : fmtClock(t * 1000));

// bucketLabel names a bucket in the tooltip, as the axis does.
const bucketLabel = (t, step) => (step === DAY ? fmtDay(t * 1000) + " UTC" : fmtHour(t * 1000));

// usageChart draws bars into el, sized to its width; it redraws on
// resize. update(result, from, to, bucket, {unit, marks}) draws a
// backtest or usage answer: unit labels the y axis ("calls"), marks
// ([{at, label, title}]) are vertical lines, e.g. where a version takes
// effect. What it shows is written to el's dataset, for tests and for a
// person's devtools. Returns {update, destroy}.
export function usageChart(el, { height = 240 } = {}) {
  let plot = null, data = null, marks = [];
  const tip = h("div.chart-tip", { hidden: true });
  const none = h("p.chart-empty", { hidden: true }, "Nothing in this window");
  const marksHost = h("div.chart-marks");
  el.append(tip, none, marksHost);
  const bars = uPlot.paths.bars({ size: [0.72, 48], gap: 1 });
  const make = (d, unit) => {
    const accent = css("--accent") || "#4f46e5";
    const grid = css("--grid") || "#eef0f4";
    const axis = css("--muted") || "#4b5563";
    const ints = d.ys.every(Number.isInteger);
    const font = "11px Inter Variable, sans-serif";
    const opts = {
      width: Math.max(280, el.clientWidth),
      height,
      padding: [12, 8, 0, 0],
      tzDate: utc,
      cursor: { y: false, points: { show: false }, drag: { x: false, y: false } },
      legend: { show: false },
      scales: {
        // Half a bucket on each side: the first and last bars are whole.
        x: { time: true, range: () => [d.xs[0] - d.step / 2, d.xs[d.xs.length - 1] + d.step / 2] },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        {
          stroke: axis,
          grid: { show: false },
          ticks: { stroke: grid },
          font,
          space: 60,
          // Ticks on whole UTC hours or days, named as the tooltip does.
          incrs: d.step === DAY ? [DAY, 2 * DAY, 7 * DAY, 14 * DAY] : [HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY],
          values: (u, splits) => {
            const labels = splits.map(xLabel);
            el.dataset.xTicks = JSON.stringify(splits.map((t, i) => [t, labels[i]]));
            return labels;
          },
        },
        {
          stroke: axis,
          grid: { stroke: grid, width: 1 },
          ticks: { show: false },
          font,
          size: 56,
          label: unit,
          labelSize: 18,
          labelFont: font,
          incrs: ints ? intIncrs : undefined,
          values: (u, vs) => {
            const labels = vs.map(fmtCompact);
            el.dataset.yTicks = JSON.stringify(labels);
            return labels;
          },
        },
      ],
      series: [{}, { label: unit || "usage", fill: accent + "cc", stroke: accent, width: 0, paths: bars, points: { show: false } }],
      hooks: {
        setCursor: [
          (u) => {
            const i = u.cursor.idx;
            if (i == null || !data) return (tip.hidden = true);
            tip.hidden = false;
            tip.replaceChildren(h("b", fmtNum(data.ys[i]), unit ? " " + unit : ""), h("span", `${fmtNum(data.ev[i])} matched · ${bucketLabel(data.xs[i], data.step)}`));
            const left = u.valToPos(data.xs[i], "x") + u.bbox.left / devicePixelRatio;
            tip.style.left = Math.min(Math.max(left, 70), el.clientWidth - 70) + "px";
          },
        ],
        draw: [(u) => placeMarks(u)],
      },
    };
    return new uPlot(opts, [d.xs, d.ys], el);
  };
  // placeMarks puts each mark's line and label over the plot. A bar is
  // drawn centred on its bucket's start, so the bucket [s, s + step)
  // spans [s - step/2, s + step/2] on the axis: a mark's time moves back
  // half a bucket to land inside its own bar (a version taking effect at
  // 15:00 today lands in today's bar, not past the chart's end).
  function placeMarks(u) {
    const box = el.getBoundingClientRect(), over = u.over.getBoundingClientRect();
    const [min, max] = [u.scales.x.min, u.scales.x.max];
    const half = (data?.step ?? 0) / 2;
    Object.assign(el.dataset, { xMin: min, xMax: max });
    replace(
      marksHost,
      marks
        .map((m) => ({ ...m, x: m.t - half }))
        .filter((m) => m.x >= min && m.x <= max)
        .map((m) =>
          h(
            "div.chart-mark",
            { "data-version": m.version ?? "", title: m.title, style: { left: over.left - box.left + u.valToPos(m.x, "x") + "px", top: over.top - box.top + "px", height: over.height + "px" } },
            h("span", m.label),
          ),
        ),
    );
  }
  const ro = new ResizeObserver(() => plot && plot.setSize({ width: Math.max(280, el.clientWidth), height }));
  ro.observe(el);
  el.addEventListener("mouseleave", () => (tip.hidden = true));
  return {
    update(result, from, to, bucket, { unit = "", marks: ms = [] } = {}) {
      data = series(result, from, to, bucket);
      marks = ms.map((m) => ({ ...m, t: new Date(m.at).getTime() / 1000 }));
      none.hidden = data.ys.some((y) => y !== 0);
      Object.assign(el.dataset, { unit, step: data.step, first: data.xs[0], last: data.xs[data.xs.length - 1] });
      if (plot) plot.destroy();
      plot = make(data, unit);
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
