// The expression languages in CodeMirror (meters' filters and values,
// governance conditions): a tokenizer for expr's syntax (for
// highlighting), completion of the environment's fields, the metadata
// and trait keys seen in stored events, the allowed functions and, in
// conditions, the meters usage() may name; and positioned diagnostics
// from the validate endpoints.
import { StreamLanguage, HighlightStyle, syntaxHighlighting, bracketMatching } from "@codemirror/language";
import { tags as t } from "@lezer/highlight";
import { EditorView, keymap, placeholder as placeholderExt, drawSelection, highlightSpecialChars } from "@codemirror/view";
import { EditorState, Compartment, Transaction } from "@codemirror/state";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap, pickedCompletion } from "@codemirror/autocomplete";
import { setDiagnostics, lintGutter } from "@codemirror/lint";
import { h, icon, replace, debounce } from "./dom.js";
import { post, isAbort } from "./api.js";
import { observedKeys } from "./keys.js";


// lang.json is generated from the rules package by the Go test in web/
// (go test ./web -run TestLangJSON -update), so the editors offer
// exactly what the compiler accepts: meters' fields and functions, and
// governance conditions' (rules.ConditionFields, usage()).
import lang from "./lang.json";

const wordOps = ["and", "or", "not", "in", "contains", "startsWith", "endsWith", "matches"];
const constants = ["true", "false", "nil"];
const keywordSet = new Set([...wordOps, "if", "else"]);

// exprStream tokenizes expr's syntax: strings, numbers, word operators,
// builtins, and field paths (known holds the names an environment starts
// a path with).
function exprStream(known) {
  return {
    name: "expr",
    startState: () => ({}),
    token(stream) {
      if (stream.eatSpace()) return null;
      const ch = stream.peek();
      if (ch === '"' || ch === "'" || ch === "`") {
        stream.next();
        let escaped = false, c;
        while ((c = stream.next()) != null) {
          if (c === ch && !escaped) break;
          escaped = !escaped && c === "\\" && ch !== "`";
        }
        return "string";
      }
      if (stream.match(/^(0x[0-9a-fA-F_]+|\d[\d_]*(\.\d[\d_]*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)/)) return "number";
      if (stream.match(/^(==|!=|<=|>=|&&|\|\||\?\?|\?\.|\*\*|[-+*/%^<>!?:])/)) return "operator";
      if (stream.match(/^[()[\]{},.]/)) return "punctuation";
      const m = stream.match(/^[A-Za-z_$#][\w$]*/);
      if (m) {
        const w = m[0];
        if (keywordSet.has(w)) return "keyword";
        if (constants.includes(w)) return "atom";
        if (stream.peek() === "(") return "function";
        if (known.has(w)) return "variableName";
        return "propertyName";
      }
      stream.next();
      return "invalid";
    },
    tokenTable: { function: t.function(t.variableName), punctuation: t.punctuation, invalid: t.invalid },
    languageData: { closeBrackets: { brackets: ["(", "[", '"', "'"] } },
  };
}

export const highlight = HighlightStyle.define([
  { tag: t.keyword, color: "var(--syn-keyword)", fontWeight: "500" },
  { tag: t.string, color: "var(--syn-string)" },
  { tag: t.number, color: "var(--syn-number)" },
  { tag: t.atom, color: "var(--syn-number)" },
  { tag: t.operator, color: "var(--syn-operator)" },
  { tag: t.variableName, color: "var(--syn-field)" },
  { tag: t.propertyName, color: "var(--syn-prop)" },
  { tag: t.function(t.variableName), color: "var(--syn-func)" },
  { tag: t.punctuation, color: "var(--syn-punct)" },
  { tag: t.invalid, color: "var(--danger)" },
]);

// observedOptions merges the keys seen in stored events (keys.js) that
// pass keep into one completion per path, with their JSON types and how
// many events carry them.
export function observedOptions(keep = () => true) {
  const byKey = new Map();
  for (const k of observedKeys()) {
    if (!keep(k.key)) continue;
    const prev = byKey.get(k.key);
    byKey.set(k.key, prev ? { ...prev, detail: prev.detail + " | " + k.type, count: prev.count + k.count } : { label: k.key, detail: k.type, count: k.count });
  }
  return [...byKey.values()].map((o) => ({ label: o.label, type: "property", detail: o.detail, info: `seen in ${o.count.toLocaleString("en-US")} events`, boost: 1 }));
}

// usageMeters are what usage("...") may name in a condition: meters of
// GET /v1/meters that group by the rule's kind of customer.
let usageMeters = [];
export function setUsageMeters(meters) {
  usageMeters = meters;
}

// exprLanguage is one expression language for the editor: its fields
// ([{path, type, doc}]), functions ([{name, note}]), the observed keys it
// completes, and extra completions (a function of the context).
function exprLanguage({ fields, functions, observed, extra }) {
  const paths = fields.filter((f) => f.type !== "struct").map((f) => [f.path, f.type.startsWith("map") ? "map" : f.type, f.doc]);
  const known = new Set(fields.map((f) => f.path.split(".")[0]));
  const fns = functions.map((f) => [f.name, f.note]);
  // complete offers the fields (and the keys seen, with their types),
  // functions, operators and constants that fit the word being typed, a
  // dotted path included.
  function complete(ctx) {
    const special = extra?.(ctx);
    if (special) return special;
    const word = ctx.matchBefore(/[A-Za-z_][\w.?]*/);
    if (!word && !ctx.explicit) return null;
    const from = word ? word.from : ctx.pos;
    const typed = word ? word.text.replace(/\?\./g, ".") : "";
    const opts = paths.map(([label, type, info]) => ({ label, type: "variable", detail: type, info, boost: 2 }));
    opts.push(...observedOptions(observed));
    if (!typed.includes(".")) {
      for (const [label, info] of fns) opts.push({ label, type: "function", detail: "function", info, apply: applyCall(label), reopen: label === "usage" });
      for (const w of wordOps) opts.push({ label: w, type: "keyword" });
      for (const c of constants) opts.push({ label: c, type: "constant" });
    }
    // Insert the whole path; a "?." the user wrote stays a plain path.
    return { from, options: opts.filter((o) => o.label.startsWith(typed) && o.label !== typed), validFor: /^[\w.]*$/ };
  }
  return { stream: StreamLanguage.define(exprStream(known)), complete };
}

// applyCall inserts a function call; usage("") puts the cursor between
// the quotes and opens the list of meters.
function applyCall(name) {
  if (name !== "usage") return name + "(";
  // (An "input.complete" transaction of a picked completion reopens the
  // list: activateOnCompletion in editor().)
  return (view, c, from, to) =>
    view.dispatch({ changes: { from, to, insert: 'usage("")' }, selection: { anchor: from + 7 }, annotations: [pickedCompletion.of(c), Transaction.userEvent.of("input.complete")] });
}

// meterIDs completes the argument of usage("...") with the meters'
// ids, named.
function meterIDs(ctx) {
  const m = ctx.matchBefore(/usage\(\s*"[\w-]*/);
  if (!m) return null;
  const from = m.from + m.text.lastIndexOf('"') + 1;
  return {
    from,
    options: usageMeters.map((x) => ({ label: x.id, detail: x.name, info: `${x.name} (${x.status}): its usage in the customer's current billing period`, type: "constant" })),
    validFor: /^[\w-]*$/,
  };
}

// The meters' language: one API call.
export const meterLang = exprLanguage({ fields: lang.fields, functions: lang.functions, observed: () => true });

// The governance conditions' language: one customer, its traits (the
// company.* and user.* keys seen in events), and usage("METER_ID").
export const conditionLang = exprLanguage({
  fields: lang.condition_fields,
  functions: [...lang.functions, ...lang.condition_functions],
  observed: (k) => k.startsWith("company.") || k.startsWith("user."),
  extra: meterIDs,
});

// conditionPaths are the values a response placeholder {{NAME}} may
// name: the condition's fields (not its objects) and the traits seen.
export function conditionPaths() {
  const own = lang.condition_fields.filter((f) => f.type !== "struct" && f.type !== "object").map((f) => ({ label: f.path, type: "variable", detail: f.type, info: f.doc, boost: 2 }));
  return [...own, ...observedOptions((k) => k.startsWith("company.") || k.startsWith("user."))];
}

// editor makes a CodeMirror editor for one expression.
// language is meterLang (the default), conditionLang, or another {stream,
// complete} (the JSON of jsonedit.js).
export function editor({ parent, doc = "", onChange, placeholder = "", label, readOnly = false, language = meterLang }) {
  const ro = new Compartment();
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        highlightSpecialChars(),
        history(),
        drawSelection(),
        bracketMatching(),
        closeBrackets(),
        language.stream,
        syntaxHighlighting(highlight),
        autocompletion({ override: [language.complete], icons: false, activateOnTyping: true, activateOnCompletion: (c) => !!c.reopen }),
        lintGutter(),
        EditorView.lineWrapping,
        placeholderExt(placeholder),
        keymap.of([...closeBracketsKeymap, ...completionKeymap, ...historyKeymap, ...defaultKeymap]),
        ro.of(EditorState.readOnly.of(readOnly)),
        EditorView.contentAttributes.of({ "aria-label": label || "expression", spellcheck: "false", autocapitalize: "off", autocorrect: "off" }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) onChange?.(u.state.doc.toString());
          // The cursor left the word being typed: show what was held.
          else if (u.selectionSet || u.focusChanged) setTimeout(() => showReported(u.view));
        }),
      ],
    }),
  });
  return view;
}

// errorRange is where an error ({line, column} 1-based, in code points;
// or {from, to}) is in doc: the word at its position (at least one
// character), or length characters when given.
function errorRange(doc, e) {
  if (e.from != null) return { from: e.from, to: Math.min(doc.length, e.to) };
  let from = 0;
  if (e.line >= 1 && e.line <= doc.lines) {
    const line = doc.line(e.line);
    const cps = Array.from(line.text);
    const col = Math.max(0, Math.min((e.column || 1) - 1, cps.length));
    from = line.from + cps.slice(0, col).join("").length;
  } else if (e.line > doc.lines) from = doc.length;
  const rest = doc.sliceString(from, Math.min(doc.length, from + 200));
  const m = rest.match(/^[\w.?$]+|^"(?:[^"\\]|\\.)*"?|^\S/);
  let to = Math.min(doc.length, from + (e.length || (m ? m[0].length : 0)));
  if (to === from) from = Math.max(0, from - 1), (to = Math.min(doc.length, from + 1));
  return { from, to };
}

// showErrors underlines the API's errors and the editor's warnings.
function showErrors(view, errors, warnings = []) {
  const doc = view.state.doc;
  const diag = (e, severity) => ({ ...errorRange(doc, e), severity, message: e.message, source: e.code });
  view.dispatch(setDiagnostics(view.state, [...errors.map((e) => diag(e, "error")), ...warnings.map((w) => diag(w, "warning"))]));
}

// typing reports whether an error is about the member access the cursor
// ends: "request." or "request.rou" while they are being typed is not a
// mistake yet, so it is held (no red) until the cursor leaves it.
function typing(view, e) {
  const member = e.code === "unknown_field" || (e.code === "syntax_error" && e.message.startsWith("a field name must follow"));
  const sel = view.state.selection.main;
  return member && view.hasFocus && sel.empty && sel.head === errorRange(view.state.doc, e).to;
}

// stillTyping reports whether an editor's errors are all about the
// member access being typed (a preview that fails on them stays neutral).
export const stillTyping = (view, errors) => errors.length > 0 && errors.every((e) => e.line && typing(view, e));

// What each editor was last told to show (reportErrors).
const reported = new WeakMap();

// reportErrors shows one editor's errors: underlined where they are
// positioned, and listed in msg (with their line and column); without
// errors, its warnings ({from, to, code, message, fix}: amber, each with
// a button applying its fix), or ok (when given).
export function reportErrors(view, msg, errors, ok, warnings = []) {
  reported.set(view, { doc: view.state.doc, msg, errors, ok, warnings });
  showReported(view);
}

function showReported(view) {
  const r = reported.get(view);
  if (!r || r.doc !== view.state.doc) return; // changed since: a newer check follows
  const held = r.errors.filter((e) => e.line && typing(view, e));
  const errors = r.errors.filter((e) => !held.includes(e));
  const warnings = errors.length || held.length ? [] : r.warnings;
  showErrors(view, errors.filter((e) => e.line), warnings);
  view.dom.classList.toggle("has-error", errors.length > 0);
  view.dom.classList.toggle("has-warning", warnings.length > 0);
  replace(r.msg, errors.length ? errors.map(errorLine) : warnings.length ? warnings.map((w) => warningLine(w, view)) : !held.length && r.ok ? h("div.ok", icon("check", 14), r.ok) : null);
}

// warningLine is a warning under an editor, with the button that applies
// its fix to view (when the text it is about is still there).
export function warningLine(w, view, text = w.message) {
  return h("div.warn", { "data-code": w.code }, icon("alert", 14), h("span", text, w.fix ? [" ", fixButton(w, view)] : null));
}

// fixButton applies a warning's fix to view.
function fixButton(w, view) {
  const apply = () => {
    if (view.state.sliceDoc(w.fix.from, w.fix.to) === w.fix.was) view.dispatch({ changes: { from: w.fix.from, to: w.fix.to, insert: w.fix.text } });
  };
  return h("button.btn.small.fix", { type: "button", onclick: apply }, w.fix.label);
}

// validator checks a definition as it is written: the function it returns
// posts definition() to path shortly after the calls stop, a newer check
// aborting an older one, and gives the errors and the definition checked
// to apply (a failure of the request itself to fail); .now() checks at
// once.
export function validator(path, definition, apply, fail) {
  let ctl = null;
  async function run() {
    ctl?.abort();
    ctl = new AbortController();
    let res;
    const d = definition();
    try {
      res = await post(path, d, { signal: ctl.signal });
    } catch (e) {
      if (!isAbort(e)) fail(e);
      return;
    }
    apply(res.errors || [], d);
  }
  const soon = debounce(run, 200);
  soon.now = run;
  return soon;
}

export const errorLine = (e) => h("div.err", { "data-code": e.code }, icon("alert", 14), h("span", e.line ? `Line ${e.line}, column ${e.column}: ` : "", e.message));

export function setDoc(view, text) {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
}
