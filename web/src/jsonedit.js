// The editor of a governance rule's response body: JSON whose strings may
// hold {{NAME}} placeholders (highlighted, and completed after "{{" with
// the values of the condition's environment), with JSON syntax errors and
// the server's placeholder errors positioned like the expressions' errors.
import { StreamLanguage } from "@codemirror/language";
import { conditionPaths } from "./expr.js";

// jsonStream tokenizes JSON: property names, strings (a placeholder in
// one is a variable), numbers, constants and punctuation.
const jsonStream = {
  name: "json",
  startState: () => ({ inString: false }),
  token(stream, state) {
    if (!state.inString) {
      if (stream.eatSpace()) return null;
      if (stream.match(/^"(?:[^"\\]|\\.)*"(?=\s*:)/)) return "propertyName";
      if (stream.eat('"')) {
        state.inString = true;
        return "string";
      }
      if (stream.match(/^-?\d+(\.\d+)?([eE][+-]?\d+)?/)) return "number";
      if (stream.match(/^(true|false|null)\b/)) return "atom";
      if (stream.match(/^[{}[\],:]/)) return "punctuation";
      stream.next();
      return "invalid";
    }
    if (stream.match(/^\{\{[^{}"]*\}\}/)) return "variableName";
    while (!stream.eol()) {
      if (stream.match(/^\{\{[^{}"]*\}\}/, false)) return "string";
      const c = stream.next();
      if (c === "\\") stream.next();
      else if (c === '"') {
        state.inString = false;
        return "string";
      }
    }
    return "string";
  },
  languageData: { closeBrackets: { brackets: ["{", "[", '"'] } },
};

// complete offers the placeholder names after "{{".
function complete(ctx) {
  const m = ctx.matchBefore(/\{\{[\w.]*/);
  if (!m) return null;
  const closed = ctx.state.sliceDoc(ctx.pos, ctx.pos + 2) === "}}";
  return {
    from: m.from + 2,
    options: conditionPaths().map((o) => ({ ...o, apply: closed ? o.label : o.label + "}}" })),
    validFor: /^[\w.]*$/,
  };
}

export const jsonLang = { stream: StreamLanguage.define(jsonStream), complete };

// jsonProblem checks text as JSON: null when it parses, else an error
// positioned where the browser's parser says (Chromium and Firefox say
// where; otherwise the end is marked).
export function jsonProblem(text) {
  try {
    JSON.parse(text);
    return null;
  } catch (e) {
    const msg = String(e.message).replace(/^JSON\.parse: /, "");
    let at = text.length;
    const pos = msg.match(/at position (\d+)/);
    const lc = msg.match(/line (\d+) column (\d+)/);
    if (pos) at = +pos[1];
    else if (lc) return { code: "invalid_json", line: +lc[1], column: +lc[2], message: "not JSON: " + msg };
    return { code: "invalid_json", ...lineColumn(text, at), message: "not JSON: " + msg.replace(/\s*\(line \d+ column \d+\)/, "") };
  }
}

// locate positions the server's error about a placeholder: the first
// {{...}} its message names, found in the text.
export function locate(text, e) {
  const name = e.message.match(/\{\{[^{}]*\}\}/)?.[0];
  const at = name ? text.indexOf(name) : -1;
  return at < 0 ? e : { ...e, ...lineColumn(text, at), length: name.length };
}

// lineColumn turns an offset (UTF-16) into a 1-based line and column
// counted in code points, as the API's errors are.
function lineColumn(text, at) {
  const before = text.slice(0, at);
  const line = before.split("\n").length;
  return { line, column: Array.from(before.slice(before.lastIndexOf("\n") + 1)).length + 1 };
}
