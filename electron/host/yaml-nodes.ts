// Edits the config's `nodes:` list as text, so every byte outside the node that changed stays as the user wrote
// it: comments and their spacing, quoting, flow or block style. The yaml Document's own printer re-spaces every
// comment in the file, which is why it is only the fallback here.
import { isMap, isSeq, parseDocument } from 'yaml';
import type { Document, YAMLSeq } from 'yaml';
import type { NodeConfig } from '../../shared/config/types.ts';

const FIELDS = ['id', 'cloud', 'path', 'url', 'token_env'] as const;

/** A scalar as YAML text: plain when it cannot be read as anything else, double-quoted otherwise. */
export function yamlScalar(value: string): string {
  const plain = /^[A-Za-z0-9_./~][A-Za-z0-9_./~-]*$/.test(value) && !/^(true|false|null|yes|no|on|off|~|[-+.\d][\d._eE+-]*)$/i.test(value);
  return plain ? value : JSON.stringify(value);
}

function fields(node: NodeConfig): [string, string][] {
  const out: [string, string][] = [];
  for (const key of FIELDS) {
    const value = node[key];
    if (value !== undefined && value !== '') out.push([key, value]);
  }
  return out;
}

export function flowNode(node: NodeConfig): string {
  return `{ ${fields(node).map(([k, v]) => `${k}: ${yamlScalar(v)}`).join(', ')} }`;
}

function blockNode(node: NodeConfig, indent: string): string {
  return fields(node).map(([k, v], i) => `${i === 0 ? '' : indent}${k}: ${yamlScalar(v)}`).join('\n');
}

/** A node whose id changed in this edit. */
export interface Renamed {
  from: string;
  to: string;
}

function lineStart(text: string, at: number): number {
  return text.lastIndexOf('\n', at - 1) + 1;
}

function lineEnd(text: string, at: number): number {
  const nl = text.indexOf('\n', at);
  return nl < 0 ? text.length : nl + 1;
}

interface Item {
  /** The id this entry has after the edit (its own, or the new id of a renamed node). */
  id: string;
  start: number;
  /** End of the node's value (a trailing comment on its line comes after). */
  end: number;
  flow: boolean;
  unchanged: boolean;
}

function items(seq: YAMLSeq, wanted: Map<string, NodeConfig>, renamed?: Renamed): Item[] | undefined {
  const out: Item[] = [];
  for (const item of seq.items) {
    if (!isMap(item) || !item.range) return undefined;
    const json = item.toJSON() as NodeConfig;
    const id = String(json.id) === renamed?.from ? renamed.to : String(json.id);
    const want = wanted.get(id);
    out.push({ id, start: item.range[0], end: item.range[1], flow: Boolean(item.flow), unchanged: want !== undefined && flowNode(json) === flowNode(want) });
  }
  return out;
}

/** Rewrites the block sequence's items in place; undefined when the list is not a plain block sequence. */
function editBlockSeq(text: string, seq: YAMLSeq, nodes: NodeConfig[], renamed?: Renamed): string | undefined {
  if (seq.flow || seq.items.length === 0) return undefined;
  const wanted = new Map(nodes.map((n) => [n.id, n]));
  const present = items(seq, wanted, renamed);
  if (!present) return undefined;
  const byId = new Map(present.map((p) => [p.id, p]));
  const last = present[present.length - 1]!;
  const dashLine = text.slice(lineStart(text, last.start), last.start);
  if (!/^\s*-\s+$/.test(dashLine)) return undefined;
  const itemIndent = ' '.repeat(dashLine.length);
  // Edits from the end backwards, so earlier offsets stay valid.
  const edits: { from: number; to: number; insert: string }[] = [];
  for (const item of present) {
    const next = wanted.get(item.id);
    if (!next) {
      const from = lineStart(text, item.start);
      edits.push({ from, to: lineEnd(text, Math.max(item.start, item.end - 1)), insert: '' });
    } else if (!item.unchanged) {
      edits.push({ from: item.start, to: item.end, insert: item.flow ? flowNode(next) : `${blockNode(next, itemIndent)}${text[item.end - 1] === '\n' ? '\n' : ''}` });
    }
  }
  const added = nodes.filter((n) => !byId.has(n.id));
  if (added.length > 0) {
    const at = lineEnd(text, Math.max(last.start, last.end - 1));
    const lines = added.map((n) => `${dashLine}${last.flow ? flowNode(n) : blockNode(n, itemIndent)}\n`).join('');
    edits.push({ from: at, to: at, insert: `${at === text.length && !text.endsWith('\n') ? '\n' : ''}${lines}` });
  }
  let out = text;
  for (const e of edits.sort((a, b) => b.from - a.from)) out = out.slice(0, e.from) + e.insert + out.slice(e.to);
  return out;
}

function sameNodes(text: string, nodes: NodeConfig[]): boolean {
  const parsed = parseDocument(text).toJS() as { nodes?: unknown } | null;
  const list = Array.isArray(parsed?.nodes) ? (parsed.nodes as NodeConfig[]) : [];
  return list.length === nodes.length && list.every((n, i) => flowNode(n) === flowNode(nodes[i]!));
}

/** The whole document printed again by the yaml library: used only when the text edit cannot be made safely. */
function reprinted(doc: Document, nodes: NodeConfig[]): string {
  const plain = nodes.map((n) => Object.fromEntries(fields(n)));
  const existing = doc.get('nodes', true);
  if (isSeq(existing)) existing.items = plain.map((n) => doc.createNode(n)) as typeof existing.items;
  else doc.set('nodes', doc.createNode(plain));
  return doc.toString();
}

/**
 * The config text with its `nodes:` list set to `nodes` (same order; unchanged entries kept byte for byte).
 * Items are removed with their line, replaced in the style they were written in, and added after the last one
 * in its style; a file with no `nodes:` list gets one appended at its end.
 */
export function setNodesInText(text: string, nodes: NodeConfig[], renamed?: Renamed): string {
  const doc = parseDocument(text);
  const existing = doc.get('nodes', true);
  let edited: string | undefined;
  if (existing === undefined && !doc.has('nodes')) {
    edited = `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}nodes:\n${nodes.map((n) => `  - ${flowNode(n)}\n`).join('')}`;
  } else if (isSeq(existing)) {
    edited = editBlockSeq(text, existing, nodes, renamed);
  }
  if (edited !== undefined && sameNodes(edited, nodes)) return edited;
  return reprinted(doc, nodes);
}
