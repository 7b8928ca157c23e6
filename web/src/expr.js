// The meter language in CodeMirror: a tokenizer for expr's syntax (for
// highlighting), completion of the environment's fields, the metadata
// and trait keys seen in stored events and the allowed functions, and positioned
// diagnostics from POST /v1/meters/validate.
import { StreamLanguage, HighlightStyle, syntaxHighlighting, bracketMatching } from "@codemirror/language";
import { tags as t } from "@lezer/highlight";
import { EditorView, keymap, placeholder as placeholderExt, drawSelection, highlightSpecialChars } from "@codemirror/view";
import { EditorState, Compartment } from "@codemirror/state";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { setDiagnostics, lintGutter } from "@codemirror/lint";


// lang.json is generated from rules.Fields and rules.Language by the Go
// test in web/ (go test ./web -run TestLangJSON -update), so the editor
// offers exactly what the compiler accepts.
import lang from "./lang.json";

// fields: [path, type, doc] for the names an expression can use (the
// "struct" roots request and response are not values themselves).
export const fields = lang.fields.filter((f) => f.type !== "struct").map((f) => [f.path, f.type.startsWith("map") ? "map" : f.type, f.doc]);
export const functions = lang.functions.map((f) => [f.name, f.note]);

const wordOps = ["and", "or", "not", "in", "contains", "startsWith", "endsWith", "matches"];
const constants = ["true", "false", "nil"];
const keywordSet = new Set([...wordOps, "if", "else"]);
const roots = new Set(["request", "response", "metadata", "company", "user"]);

// The tokenizer: strings, numbers, word operators, builtins, field paths.
const exprStream = {
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
      if (roots.has(w) || fields.some((f) => f[0] === w)) return "variableName";
      return "propertyName";
    }
    stream.next();
    return "invalid";
  },
  tokenTable: { function: t.function(t.variableName), punctuation: t.punctuation, invalid: t.invalid },
  languageData: { closeBrackets: { brackets: ["(", "[", '"', "'"] } },
};

export const exprLanguage = StreamLanguage.define(exprStream);

const highlight = HighlightStyle.define([
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

// observedKeys are the paths seen in stored events, from the answer of
// GET /v1/events/stats: metadata_keys (under "metadata.") and trait_keys
// (already named "company.<trait>" or "user.<trait>"), each [{key, type, count}].
let observedKeys = [];
export function setObservedKeys(stats) {
  observedKeys = [...(stats.metadata_keys || []).map((k) => ({ ...k, key: "metadata." + k.key })), ...(stats.trait_keys || [])];
}

// complete offers the fields (and the metadata.*, company.* and user.*
// keys seen, with their types), functions, operators and constants that
// fit the word being typed, a dotted path included.
function complete(ctx) {
  const word = ctx.matchBefore(/[A-Za-z_][\w.?]*/);
  if (!word && !ctx.explicit) return null;
  const from = word ? word.from : ctx.pos;
  const typed = word ? word.text.replace(/\?\./g, ".") : "";
  const opts = [];
  for (const [label, type, info] of fields) opts.push({ label, type: "variable", detail: type, info, boost: 2 });
  const byKey = new Map();
  for (const k of observedKeys) {
    const label = k.key;
    const prev = byKey.get(label);
    byKey.set(label, prev ? { ...prev, detail: prev.detail + " | " + k.type, count: prev.count + k.count } : { label, type: "property", detail: k.type, count: k.count });
  }
  for (const o of byKey.values()) opts.push({ label: o.label, type: "property", detail: o.detail, info: `seen in ${o.count.toLocaleString("en-US")} events`, boost: 1 });
  if (!typed.includes(".")) {
    for (const [label, info] of functions) opts.push({ label, type: "function", detail: "function", info, apply: label + "(" });
    for (const w of wordOps) opts.push({ label: w, type: "keyword" });
    for (const c of constants) opts.push({ label: c, type: "constant" });
  }
  // Insert the whole path; a "?." the user wrote stays a plain path.
  return { from, options: opts.filter((o) => o.label.startsWith(typed) && o.label !== typed), validFor: /^[\w.]*$/ };
}

// editor makes a CodeMirror editor for one expression.
export function editor({ parent, doc = "", onChange, placeholder = "", label, readOnly = false }) {
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
        exprLanguage,
        syntaxHighlighting(highlight),
        autocompletion({ override: [complete], icons: false, activateOnTyping: true }),
        lintGutter(),
        EditorView.lineWrapping,
        placeholderExt(placeholder),
        keymap.of([...closeBracketsKeymap, ...completionKeymap, ...historyKeymap, ...defaultKeymap]),
        ro.of(EditorState.readOnly.of(readOnly)),
        EditorView.contentAttributes.of({ "aria-label": label || "expression", spellcheck: "false", autocapitalize: "off", autocorrect: "off" }),
        EditorView.updateListener.of((u) => u.docChanged && onChange?.(u.state.doc.toString())),
      ],
    }),
  });
  return view;
}

// showErrors underlines the API's errors ({line, column, message}) in
// an editor. Lines and columns are 1-based and count code points.
export function showErrors(view, errors) {
  const doc = view.state.doc;
  const diags = errors.map((e) => {
    let from = 0;
    if (e.line >= 1 && e.line <= doc.lines) {
      const line = doc.line(e.line);
      const cps = Array.from(line.text);
      const col = Math.max(0, Math.min((e.column || 1) - 1, cps.length));
      from = line.from + cps.slice(0, col).join("").length;
    } else if (e.line > doc.lines) from = doc.length;
    // Underline the word at the position (at least one character).
    const rest = doc.sliceString(from, Math.min(doc.length, from + 200));
    const m = rest.match(/^[\w.?$]+|^"(?:[^"\\]|\\.)*"?|^\S/);
    let to = from + (m ? m[0].length : 0);
    if (to === from) from = Math.max(0, from - 1), (to = Math.min(doc.length, from + 1));
    return { from, to, severity: "error", message: e.message, source: e.code };
  });
  view.dispatch(setDiagnostics(view.state, diags));
}

export function setDoc(view, text) {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
}
