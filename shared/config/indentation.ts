// Finds the common indentation mistakes in a YAML file (a key indented more or less than its siblings, a tab in
// the indentation) and names them on the offending line in plain words. The YAML parser reports these on the line
// above, twice, in its own terms ("Nested mappings are not allowed in compact mappings"); validate.ts runs this
// only when the parser has failed, so a valid file never gets a finding from here. Pure: no Node, no DOM.

export interface IndentationProblem {
  line: number;
  column: number;
  key: string;
  message: string;
  fix: string;
  /** The lines around it (from the content line before to the one after) where the parser reports the same mistake. */
  previousLine: number;
  nextLine: number;
}

interface Level {
  indent: number;
  path: string;
  lastKey?: string;
  items: number;
  /** A list written at its key's own indent (`nodes:` then `- id: a` under the n of nodes). */
  sameIndentList?: boolean;
}

interface ContentLine {
  number: number;
  indent: number;
  body: string;
}

const KEY = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"{[\]},:&*!|>%@`-][^#:]*?|-[^\s#:][^#:]*?)\s*:(?:\s|$)/;
const BLOCK_SCALAR = /:\s+[|>][-+0-9]*\s*(#.*)?$/;

function spaces(n: number): string {
  return `${n} space${n === 1 ? '' : 's'}`;
}

function unquote(key: string): string {
  const k = key.trim();
  if ((k.startsWith('"') && k.endsWith('"')) || (k.startsWith("'") && k.endsWith("'"))) return k.slice(1, -1);
  return k;
}

function joinPath(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

/** Bracket depth change of a line, outside quotes and comments: a flow collection may span lines. */
function flowDelta(body: string): number {
  let depth = 0;
  let quote: string | null = null;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '#' && (i === 0 || /\s/.test(body[i - 1]!))) break;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
  }
  return depth;
}

/** Splits a sequence entry's dashes off: "- - id: a" at indent 2 → the mapping "id: a" at indent 6. */
function stripDashes(line: ContentLine): { dashes: number[]; indent: number; body: string } {
  const dashes: number[] = [];
  let { indent, body } = line;
  while (/^-(\s|$)/.test(body)) {
    dashes.push(indent);
    const rest = body.slice(1);
    const pad = rest.length - rest.trimStart().length;
    indent += 1 + pad;
    body = rest.trimStart();
  }
  return { dashes, indent, body };
}

class Scanner {
  readonly problems: IndentationProblem[] = [];
  private levels: Level[] = [];
  private opener: { path: string } | null = null;
  previousLine = 0;

  line(line: ContentLine): void {
    const { dashes, indent, body } = stripDashes(line);
    const keyMatch = KEY.exec(body);
    const first = dashes[0] ?? indent;
    if (!this.place(line, first, dashes.length === 0 ? keyMatch : null, dashes.length > 0)) return;
    const top = this.levels.at(-1)!;
    let path = top.path;
    if (dashes.length > 0) {
      for (const [i, dashIndent] of dashes.entries()) {
        const level = i === 0 ? top : this.push(dashIndent, path);
        path = `${level.path}[${level.items++}]`;
        if (i > 0) level.lastKey = undefined;
      }
      this.opener = null;
      if (body === '' || body.startsWith('#')) {
        this.opener = { path };
        return;
      }
      if (!keyMatch) return;
      this.push(indent, path);
    }
    const current = this.levels.at(-1)!;
    if (!keyMatch) {
      this.opener = null;
      return;
    }
    const key = unquote(keyMatch[1]!);
    current.lastKey = key;
    const rest = body.slice(keyMatch[0].length).trim();
    this.opener = rest === '' || rest.startsWith('#') ? { path: joinPath(current.path, key) } : null;
  }

  /** Puts a line at its level; returns false for a line that continues a scalar or was reported. */
  private place(line: ContentLine, indent: number, keyMatch: RegExpExecArray | null, isListItem: boolean): boolean {
    if (this.levels.length === 0) {
      this.levels.push({ indent, path: '', items: 0 });
      return true;
    }
    let top = this.levels.at(-1)!;
    if (isListItem && this.opener && indent === top.indent) {
      this.push(indent, this.opener.path).sameIndentList = true;
      return true;
    }
    if (!isListItem && top.sameIndentList && indent === top.indent) {
      this.levels.pop();
      top = this.levels.at(-1)!;
    }
    if (indent > top.indent) {
      if (this.opener) {
        this.push(indent, this.opener.path);
        return true;
      }
      if (isListItem && top.items > 0) {
        this.report(line, top.path, `this list item is indented by ${spaces(indent)}, but the items before it by ${top.indent}.`, `indent it by ${spaces(top.indent)}, like the item above it.`);
        return false;
      }
      if (!keyMatch) return false; // a plain scalar continued on the next line
      const key = unquote(keyMatch[1]!);
      const beside = top.lastKey ? `, like ${top.lastKey} above it` : '';
      this.report(line, joinPath(top.path, key), `this key is indented by ${spaces(indent)}, but its siblings by ${top.indent}.`, `indent it by ${spaces(top.indent)}${beside}.`);
      return false;
    }
    let popped: Level | undefined;
    while (this.levels.length > 1 && (indent < top.indent || (!isListItem && top.sameIndentList && indent === top.indent))) {
      popped = this.levels.pop();
      top = this.levels.at(-1)!;
    }
    if (indent === top.indent || !popped) return true;
    // Between two levels: deeper than the parent's keys, shallower than the siblings it left.
    this.levels.push(popped);
    const key = keyMatch ? unquote(keyMatch[1]!) : '';
    const item = isListItem && popped.items > 0;
    const what = keyMatch ? 'this key' : item ? 'this list item' : 'this line';
    const siblings = item ? 'the items around it' : 'its siblings';
    const beside = popped.lastKey ? ` to keep it beside ${popped.lastKey}` : item ? `, like the other items of ${popped.path || 'the list'}` : '';
    const parent = top.lastKey && !item ? `, or by ${spaces(top.indent)} to put it beside ${top.lastKey}` : '';
    this.report(line, key ? joinPath(popped.path, key) : popped.path, `${what} is indented by ${spaces(indent)}, but ${siblings} by ${popped.indent}.`, `indent it by ${spaces(popped.indent)}${beside}${parent}.`);
    return false;
  }

  private push(indent: number, path: string): Level {
    const level: Level = { indent, path, items: 0 };
    this.levels.push(level);
    this.opener = null;
    return level;
  }

  /** Keyless, so the CLI line reads "error: YAML syntax error: …" as it did for every syntax error. */
  tab(line: ContentLine, column: number): void {
    const top = this.levels.at(-1);
    let like = '';
    if (this.opener) like = ` (deeper than the line above, e.g. ${spaces((top?.indent ?? 0) + 2)})`;
    else if (top) like = ` (${spaces(top.indent)} at this level${top.lastKey ? `, like ${top.lastKey}` : ''})`;
    const message = 'YAML syntax error: this line is indented with a tab, and YAML indents with spaces only.';
    this.problems.push({ line: line.number, column, key: '', previousLine: this.previousLine, nextLine: line.number, message, fix: `indent with spaces, not tabs${like}.` });
  }

  private report(line: ContentLine, key: string, message: string, fix: string): void {
    this.problems.push({ line: line.number, column: line.indent + 1, key, message, fix, previousLine: this.previousLine, nextLine: line.number });
  }

}

export function findIndentationProblems(text: string): IndentationProblem[] {
  const scanner = new Scanner();
  let flowDepth = 0;
  let blockScalarIndent: number | null = null;
  const lines = text.split(/\r\n|\r|\n/);
  const contentLines: number[] = [];
  for (const [i, raw] of lines.entries()) {
    const lead = /^[ \t]*/.exec(raw)![0];
    const body = raw.slice(lead.length);
    const indent = lead.length;
    if (body === '' || (body.startsWith('#') && !lead.includes('\t'))) continue;
    if (blockScalarIndent !== null) {
      if (indent > blockScalarIndent) continue;
      blockScalarIndent = null;
    }
    if (flowDepth > 0) {
      flowDepth = Math.max(0, flowDepth + flowDelta(body));
      continue;
    }
    if (/^(---|\.\.\.)(\s|$)/.test(body) || body.startsWith('%')) continue;
    const line: ContentLine = { number: i + 1, indent, body };
    contentLines.push(line.number);
    if (lead.includes('\t')) {
      scanner.tab(line, lead.indexOf('\t') + 1);
      scanner.previousLine = line.number;
      continue;
    }
    scanner.line(line);
    scanner.previousLine = line.number;
    flowDepth = Math.max(0, flowDelta(body));
    if (BLOCK_SCALAR.test(body)) blockScalarIndent = indent;
  }
  for (const problem of scanner.problems) problem.nextLine = contentLines.find((n) => n > problem.line) ?? problem.line;
  return scanner.problems;
}
