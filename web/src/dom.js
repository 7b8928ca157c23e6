// Small DOM helpers: the UI is plain DOM, built with h().

// h builds an element: h("button#save.btn.primary", {onclick}, "Save").
// attrs: on* are listeners, class/className add classes, dataset,
// style (object or string), anything else is set as an attribute
// (false/null skip it, true sets it empty).
export function h(tag, attrs, ...children) {
  const [head, ...classes] = tag.split(".");
  const [name, id] = head.split("#");
  const el = document.createElement(name || "div");
  if (id) el.id = id;
  if (classes.length) el.classList.add(...classes);
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class" || k === "className") String(v).split(/\s+/).filter(Boolean).forEach((c) => el.classList.add(c));
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" && "value" in el) el.value = v;
    else if (k === "checked" || k === "disabled" || k === "selected") el[k] = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// replace swaps a node's children.
export function replace(el, ...children) {
  el.textContent = "";
  append(el, children);
  return el;
}

// icon draws a small stroke icon from a 24x24 path.
const icons = {
  meters: "M4 20V12M10 20V6M16 20v-9M22 20V3",
  events: "M4 6h16M4 12h16M4 18h10",
  billing: "M3 7h18v12H3zM3 11h18M7 15h3",
  governance: "M12 3l8 3v6c0 4.5-3.4 8-8 9-4.6-1-8-4.5-8-9V6zM9 12l2 2 4-4",
  plus: "M12 5v14M5 12h14",
  back: "M15 18l-6-6 6-6",
  copy: "M9 9h11v11H9zM5 15H4V4h11v1",
  out: "M15 4h4v16h-4M10 8l-4 4 4 4M6 12h11",
  close: "M6 6l12 12M18 6L6 18",
  check: "M5 12l5 5 9-10",
  alert: "M12 8v5M12 16.5v.5M10.3 3.9L2.4 18a2 2 0 001.7 3h15.8a2 2 0 001.7-3L13.7 3.9a2 2 0 00-3.4 0z",
  archive: "M3 4h18v4H3zM5 8v12h14V8M10 12h4",
  refresh: "M20 11a8 8 0 10-2.3 5.7M20 4v7h-7",
  menu: "M4 7h16M4 12h16M4 17h16",
  info: "M12 8v.5M12 11v5M12 21a9 9 0 110-18 9 9 0 010 18z",
};
export function icon(name, size = 16) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", size);
  svg.setAttribute("height", size);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const p = document.createElementNS("http://www.w3.org/2000/svg", "path");
  p.setAttribute("d", icons[name] || "");
  svg.append(p);
  return svg;
}

// Formatting.
const nf = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
export const fmtNum = (v) => (v == null ? "—" : nf.format(v));
export const fmtCompact = (v) => (v == null ? "—" : Math.abs(v) < 10000 ? nf.format(v) : compact.format(v));
// Times are UTC everywhere (buckets, billing periods and hours are UTC
// hours and days), written day month year: 24 Nov 2026, 14:00 UTC.
const dtf = new Intl.DateTimeFormat("en-GB", { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: "UTC" });
export const fmtTime = (t) => (t ? dtf.format(new Date(t)) + " UTC" : "—");
const dayFmt = new Intl.DateTimeFormat("en-GB", { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
const shortDay = new Intl.DateTimeFormat("en-GB", { month: "short", day: "numeric", timeZone: "UTC" });
const hourFmt = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "UTC" });
// fmtDay is a UTC day (24 Nov 2026; 24 Nov with short).
export const fmtDay = (t, short = false) => (short ? shortDay : dayFmt).format(new Date(t));
// fmtClock is a UTC time of day (14:00).
export const fmtClock = (t) => hourFmt.format(new Date(t));
// fmtHour is the UTC hour starting at t: 24 Nov 2026, 14:00–15:00 UTC.
export const fmtHour = (t) => `${fmtDay(t)}, ${fmtClock(t)}–${fmtClock(new Date(t).getTime() + 3600e3)} UTC`;
export function fmtAgo(t) {
  if (!t) return "—";
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  if (s < 0) return "in " + fmtDur(-s);
  if (s < 45) return "just now";
  return fmtDur(s) + " ago";
}
function fmtDur(s) {
  if (s < 90) return s + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 129600) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " days";
}

// debounce delays fn until calls stop for ms.
export function debounce(fn, ms) {
  let t;
  const d = (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}

// toast shows a short message at the bottom of the screen.
export function toast(message, kind = "ok") {
  let host = document.querySelector(".toasts");
  if (!host) document.body.append((host = h("div.toasts", { role: "status", "aria-live": "polite" })));
  const t = h("div.toast." + kind, icon(kind === "ok" ? "check" : "alert"), h("span", message));
  host.append(t);
  while (host.children.length > 3) host.firstElementChild.remove();
  setTimeout(() => t.classList.add("leaving"), 3200);
  setTimeout(() => t.remove(), 3600);
}

// modal opens a dialog; content(close) returns its body. It traps focus,
// closes on Escape and on the backdrop, and gives focus back on close.
export function modal({ title, content, wide = false, label, onClose }) {
  const before = document.activeElement;
  const backdrop = h("div.backdrop");
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    backdrop.remove();
    onClose?.();
    document.removeEventListener("keydown", onKey, true);
    before?.focus?.();
  };
  const dialog = h(
    "div.dialog" + (wide ? ".wide" : ""),
    { role: "dialog", "aria-modal": "true", "aria-label": label || title },
    h("header.dialog-head", h("h2", title), h("button.icon-btn", { type: "button", "aria-label": "Close", onclick: close }, icon("close"))),
    h("div.dialog-body", content(close)),
  );
  backdrop.append(dialog);
  backdrop.addEventListener("mousedown", (e) => e.target === backdrop && close());
  function onKey(e) {
    if (e.key === "Escape") {
      e.preventDefault();
      close();
    } else if (e.key === "Tab") {
      const f = [...dialog.querySelectorAll("button, [href], input, select, textarea, [tabindex]:not([tabindex='-1'])")].filter((x) => !x.disabled);
      if (!f.length) return;
      const first = f[0], last = f[f.length - 1];
      if (e.shiftKey && document.activeElement === first) (last.focus(), e.preventDefault());
      else if (!e.shiftKey && document.activeElement === last) (first.focus(), e.preventDefault());
    }
  }
  document.addEventListener("keydown", onKey, true);
  document.body.append(backdrop);
  dialog.tabIndex = -1;
  (dialog.querySelector("[autofocus]") || dialog).focus();
  return close;
}

// confirmDialog asks a yes/no question; resolves true on confirm.
export function confirmDialog({ title, body, confirm, danger = false }) {
  return new Promise((resolve) => {
    let answered = false;
    modal({
      title,
      onClose: () => resolve(answered),
      content: (close) =>
        h(
          "div.confirm",
          body,
          h(
            "div.actions",
            h("button.btn", { type: "button", onclick: () => close() }, "Cancel"),
            h("button.btn." + (danger ? "danger" : "primary"), { type: "button", autofocus: true, onclick: () => ((answered = true), close()) }, confirm),
          ),
        ),
    });
  });
}

// jsonView renders a value as indented, coloured JSON, in a panel that
// scrolls by keyboard too (it takes the focus: arrows, Page Down).
export function jsonView(v, label = "JSON") {
  const pre = h("pre.json", { tabindex: "0", role: "region", "aria-label": label });
  const walk = (x, ind) => {
    if (x === null) return h("span.j-null", "null");
    if (typeof x === "string") return h("span.j-str", JSON.stringify(x));
    if (typeof x === "number") return h("span.j-num", String(x));
    if (typeof x === "boolean") return h("span.j-bool", String(x));
    const pad = "  ".repeat(ind + 1), end = "  ".repeat(ind);
    if (Array.isArray(x)) {
      if (!x.length) return "[]";
      return [ "[\n", x.map((y, i) => [pad, walk(y, ind + 1), i < x.length - 1 ? ",\n" : "\n"]), end, "]" ];
    }
    const ks = Object.keys(x);
    if (!ks.length) return "{}";
    return ["{\n", ks.map((k, i) => [pad, h("span.j-key", JSON.stringify(k)), ": ", walk(x[k], ind + 1), i < ks.length - 1 ? ",\n" : "\n"]), end, "}"];
  };
  const flat = (n) => (Array.isArray(n) ? n.flatMap(flat) : [n]);
  pre.append(...flat(walk(v, 0)).map((n) => (n instanceof Node ? n : document.createTextNode(n))));
  return pre;
}

// copyButton copies text to the clipboard.
export function copyButton(text, label = "Copy") {
  return h(
    "button.btn.small",
    {
      type: "button",
      onclick: async (e) => {
        try {
          await navigator.clipboard.writeText(typeof text === "function" ? text() : text);
          toast("Copied");
        } catch {
          toast("Copy failed: select the text and copy it", "err");
        }
        e.currentTarget.blur();
      },
    },
    icon("copy", 14),
    label,
  );
}

// badge shows a meter status.
export function statusBadge(status) {
  return h("span.badge." + status, h("i.dot"), status);
}

// pageHead is the head of a page: the way back ([href, label], optional),
// its title (text for an h1, or a node), a line under it (text, or a
// node) and actions on the right.
export function pageHead({ back, title, sub, actions }) {
  return h(
    "header.page-head",
    h("div", back && h("a.crumb", { href: back[0] }, icon("back", 14), back[1]), typeof title === "string" ? h("h1", title) : title, typeof sub === "string" ? h("p.sub", sub) : sub),
    actions,
  );
}

export function empty(title, text, action) {
  return h("div.empty", h("div.empty-art", icon("meters", 28)), h("h3", title), text && h("p", text), action);
}

export function spinner() {
  return h("span.spinner", { role: "progressbar", "aria-label": "Loading" });
}

// fitText shrinks the font of elements whose text overflows them (big
// totals in narrow cards), down to min px.
export function fitText(root, sel = ".stat-value", min = 12) {
  requestAnimationFrame(() => {
    for (const el of root.querySelectorAll(sel)) {
      el.style.fontSize = "";
      let size = parseFloat(getComputedStyle(el).fontSize);
      while (el.scrollWidth > el.clientWidth && size > min) el.style.fontSize = --size + "px";
    }
  });
}
