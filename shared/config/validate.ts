// Parses and validates data_sources.yml. Pure: the engine, the CLI and the renderer's live editor all use it.
// Every diagnostic names the file, line and column, the key, what was expected and how to fix it.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, YAMLParseError } from 'yaml';
import type { Document, Node as YamlNode, Pair, YAMLMap } from 'yaml';
import {
  CHECKSUM_ALGORITHMS,
  chunkSizeBytes,
  MIB,
  CLOUDS,
  CLUSTER_DEFAULTS,
  INGESTION_DEFAULTS,
  INGESTION_MODES,
  PLACEMENT_STRATEGIES,
  SOURCE_TYPES,
} from './types.ts';
import { findIndentationProblems } from './indentation.ts';
import type { CloudName, ClusterConfig, DataSourceConfig, IngestConfig, IngestionConfig, NodeConfig, SourceType } from './types.ts';

export interface Diagnostic {
  severity: 'error' | 'warning';
  file: string;
  line: number;
  column: number;
  key: string;
  message: string;
  expected?: string;
  fix: string;
}

export interface ValidationResult {
  config?: IngestConfig;
  diagnostics: Diagnostic[];
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.column}`;
  const key = d.key ? ` ${d.key}:` : '';
  return `${where}: ${d.severity}:${key} ${d.message} Fix: ${d.fix}`;
}

export const EXPECTED_SOURCE_TYPE: Record<CloudName, SourceType> = { aws: 's3', gcp: 'gcs', azure: 'blob', local: 'local' };

const SECRET_KEY = /(secret|password|passwd|token$|access_key|accesskey|account_key|connection_string|sas|credential|private_key)/i;

const TOP_KEYS = ['data_sources', 'ingestion', 'use_local_simulation', 'nodes', 'cluster'] as const;
const SOURCE_KEYS = ['type', 'bucket', 'container', 'region', 'local_simulation', 'path', 'prefix', 'endpoint'] as const;
const NODE_KEYS = ['id', 'cloud', 'path', 'url', 'token_env'] as const;
const INGESTION_KEYS = Object.keys(INGESTION_DEFAULTS) as (keyof IngestionConfig)[];

class Checker {
  readonly diagnostics: Diagnostic[] = [];
  private readonly file: string;
  private readonly lines: LineCounter;

  constructor(file: string, lines: LineCounter) {
    this.file = file;
    this.lines = lines;
  }

  report(severity: Diagnostic['severity'], node: YamlNode | null | undefined, key: string, message: string, fix: string, expected?: string): void {
    const offset = node?.range?.[0] ?? 0;
    const { line, col } = this.lines.linePos(offset);
    this.diagnostics.push({ severity, file: this.file, line, column: col, key, message, fix, ...(expected ? { expected } : {}) });
  }

  error(node: YamlNode | null | undefined, key: string, message: string, fix: string, expected?: string): void {
    this.report('error', node, key, message, fix, expected);
  }

  /** Warns about keys not in `known`; credentials are errors, since they must never live in the YAML. */
  checkKeys(map: YAMLMap, path: string, known: readonly string[]): void {
    for (const pair of map.items) {
      const name = keyName(pair);
      const full = path ? `${path}.${name}` : name;
      if (known.includes(name)) continue;
      if (SECRET_KEY.test(name)) {
        this.error(pair.key as YamlNode, full, 'credentials must not be stored in the config file.', secretFix(path));
        continue;
      }
      const guess = closest(name, known);
      this.report('warning', pair.key as YamlNode, full, `unknown key '${name}' is ignored.`, guess ? `did you mean '${guess}'?` : `remove it; known keys here: ${known.join(', ')}.`);
    }
  }
}

function secretFix(path: string): string {
  if (path.startsWith('nodes')) return 'put the token in an environment variable and name it with token_env.';
  return "remove it; credentials come from the cloud SDK's default chain (environment, profiles, workload identity).";
}

function keyName(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function describe(node: YamlNode | null | undefined): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'an empty value';
    if (typeof v === 'string') return `the text "${v}"`;
    return `${typeof v} ${String(v)}`;
  }
  return 'an unexpected value';
}

function valueNode(map: YAMLMap, key: string): YamlNode | null | undefined {
  const pair = map.items.find((p) => keyName(p) === key);
  return pair ? (pair.value as YamlNode | null) : undefined;
}

function keyNode(map: YAMLMap, key: string): YamlNode | undefined {
  const pair = map.items.find((p) => keyName(p) === key);
  return pair?.key as YamlNode | undefined;
}

type NumberRule = { integer: boolean; min: number; exclusiveMin: boolean; example: string };

const INGESTION_NUMBERS: Partial<Record<keyof IngestionConfig, NumberRule>> = {
  chunk_size_mb: { integer: false, min: 0, exclusiveMin: true, example: '100' },
  max_concurrent_chunks: { integer: true, min: 1, exclusiveMin: false, example: '10' },
  retry_attempts: { integer: true, min: 0, exclusiveMin: false, example: '3' },
  retry_delay_seconds: { integer: false, min: 0, exclusiveMin: false, example: '5' },
  replicas: { integer: true, min: 1, exclusiveMin: false, example: '1' },
  pack_below_mb: { integer: false, min: 0, exclusiveMin: false, example: '1' },
};

function readNumber(c: Checker, node: YamlNode | null | undefined, key: string, rule: NumberRule): number | undefined {
  const value = isScalar(node) ? node.value : undefined;
  const kind = rule.integer ? 'a whole number' : 'a number';
  const bound = rule.exclusiveMin ? `greater than ${rule.min}` : `of at least ${rule.min}`;
  const expected = `${kind} ${bound}`;
  if (typeof value !== 'number' || Number.isNaN(value)) {
    const quoted = typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value));
    c.error(node, key, `expected ${expected}, got ${describe(node)}.`, quoted ? 'remove the quotes around the number.' : `set it to ${expected}, e.g. ${rule.example}.`, expected);
    return undefined;
  }
  const tooSmall = rule.exclusiveMin ? value <= rule.min : value < rule.min;
  if (tooSmall || (rule.integer && !Number.isInteger(value)) || !Number.isFinite(value)) {
    c.error(node, key, `expected ${expected}, got ${value}.`, `set it to ${expected}, e.g. ${rule.example}.`, expected);
    return undefined;
  }
  return value;
}

function readString(c: Checker, node: YamlNode | null | undefined, key: string, example: string): string | undefined {
  if (isScalar(node) && typeof node.value === 'string' && node.value.trim() !== '') return node.value;
  c.error(node, key, `expected a non-empty text, got ${describe(node)}.`, `set it to a text value, e.g. ${example}.`, 'a non-empty text');
  return undefined;
}

function readEnum<T extends string>(c: Checker, node: YamlNode | null | undefined, key: string, allowed: readonly T[]): T | undefined {
  const value = isScalar(node) ? node.value : undefined;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  const guess = typeof value === 'string' ? closest(value, allowed) : undefined;
  c.error(node, key, `expected one of ${allowed.join(', ')}, got ${describe(node)}.`, guess ? `did you mean '${guess}'?` : `use one of ${allowed.join(', ')}.`, `one of ${allowed.join(', ')}`);
  return undefined;
}

function readBoolean(c: Checker, node: YamlNode | null | undefined, key: string): boolean | undefined {
  const value = isScalar(node) ? node.value : undefined;
  if (typeof value === 'boolean') return value;
  c.error(node, key, `expected true or false, got ${describe(node)}.`, 'write true or false without quotes.', 'true or false');
  return undefined;
}

function checkSource(c: Checker, cloud: CloudName, map: YAMLMap): DataSourceConfig | undefined {
  const path = `data_sources.${cloud}`;
  c.checkKeys(map, path, SOURCE_KEYS);
  const typeNode = valueNode(map, 'type');
  if (typeNode === undefined) {
    c.error(map, `${path}.type`, 'missing required key type.', `add type: "${EXPECTED_SOURCE_TYPE[cloud]}".`, `one of ${SOURCE_TYPES.join(', ')}`);
    return undefined;
  }
  const type = readEnum(c, typeNode, `${path}.type`, SOURCE_TYPES);
  if (!type) return undefined;
  if (type !== EXPECTED_SOURCE_TYPE[cloud]) {
    c.error(typeNode, `${path}.type`, `a ${cloud} data source must be of type "${EXPECTED_SOURCE_TYPE[cloud]}", got "${type}".`, `set type: "${EXPECTED_SOURCE_TYPE[cloud]}", or move this source under the cloud it belongs to.`);
    return undefined;
  }
  const source: DataSourceConfig = { type };
  let ok = true;
  for (const key of ['bucket', 'container', 'region', 'local_simulation', 'path', 'prefix', 'endpoint'] as const) {
    const node = valueNode(map, key);
    if (node === undefined) continue;
    const value = readString(c, node, `${path}.${key}`, key === 'endpoint' ? '"http://127.0.0.1:9000"' : `"my-${key}"`);
    if (value === undefined) ok = false;
    else source[key] = value;
  }
  const required = type === 's3' || type === 'gcs' ? 'bucket' : type === 'blob' ? 'container' : 'path';
  if (!source[required] && valueNode(map, required) === undefined) {
    c.error(map, `${path}.${required}`, `missing required key ${required} for a ${type} source.`, `add ${required}: "..." under data_sources.${cloud}.`);
    ok = false;
  }
  if (source.endpoint && !/^https?:\/\/[^\s/]+/.test(source.endpoint)) {
    c.error(valueNode(map, 'endpoint'), `${path}.endpoint`, `expected an http(s) URL, got "${source.endpoint}".`, 'write it as http://host:port or https://host.', 'an http(s) URL');
    ok = false;
  }
  return ok ? source : undefined;
}

function checkDataSources(c: Checker, node: YamlNode | null | undefined, topKey: YamlNode | undefined): IngestConfig['data_sources'] | undefined {
  if (node === undefined) {
    c.error(topKey, 'data_sources', 'missing required key data_sources.', 'add a data_sources: mapping with at least one of aws, gcp, azure, local.');
    return undefined;
  }
  if (!isMap(node) || node.items.length === 0) {
    c.error(node, 'data_sources', `expected a mapping of clouds to sources, got ${describe(node)}.`, 'list at least one of aws, gcp, azure, local under data_sources.', 'a mapping');
    return undefined;
  }
  const sources: IngestConfig['data_sources'] = {};
  let ok = true;
  for (const pair of node.items) {
    const name = keyName(pair);
    if (!(CLOUDS as readonly string[]).includes(name)) {
      const guess = closest(name, CLOUDS);
      c.error(pair.key as YamlNode, `data_sources.${name}`, `unknown cloud '${name}'.`, guess ? `did you mean '${guess}'? Clouds are ${CLOUDS.join(', ')}.` : `use one of ${CLOUDS.join(', ')}.`, `one of ${CLOUDS.join(', ')}`);
      ok = false;
      continue;
    }
    const cloud = name as CloudName;
    if (!isMap(pair.value)) {
      c.error(pair.value as YamlNode, `data_sources.${cloud}`, `expected a mapping with type and location, got ${describe(pair.value as YamlNode)}.`, `write it as { type: "${EXPECTED_SOURCE_TYPE[cloud]}", ... }.`, 'a mapping');
      ok = false;
      continue;
    }
    const source = checkSource(c, cloud, pair.value);
    if (source) sources[cloud] = source;
    else ok = false;
  }
  return ok ? sources : undefined;
}

function checkIngestion(c: Checker, node: YamlNode | null | undefined): IngestionConfig | undefined {
  const ingestion: IngestionConfig = { ...INGESTION_DEFAULTS };
  if (node === undefined) return ingestion;
  if (!isMap(node)) {
    c.error(node, 'ingestion', `expected a mapping of settings, got ${describe(node)}.`, 'write it as ingestion: { chunk_size_mb: 100, ... } or remove it to use the defaults.', 'a mapping');
    return undefined;
  }
  c.checkKeys(node, 'ingestion', INGESTION_KEYS);
  let ok = true;
  for (const key of INGESTION_KEYS) {
    const value = valueNode(node, key);
    if (value === undefined) continue;
    const path = `ingestion.${key}`;
    const rule = INGESTION_NUMBERS[key];
    let parsed: string | number | undefined;
    if (rule) parsed = readNumber(c, value, path, rule);
    else if (key === 'checksum') parsed = readEnum(c, value, path, CHECKSUM_ALGORITHMS);
    else if (key === 'placement') parsed = readEnum(c, value, path, PLACEMENT_STRATEGIES);
    else if (key === 'mode') parsed = readEnum(c, value, path, INGESTION_MODES);
    else parsed = readString(c, value, path, key === 'file_pattern' ? '"**/*.bin"' : '"./runs"');
    if (key === 'chunk_size_mb' && typeof parsed === 'number' && chunkSizeBytes({ chunk_size_mb: parsed }) < 1) {
      // Rounds to 0 bytes: planning would never end.
      c.error(value, path, `expected a chunk of at least one byte, got ${parsed} MiB (${parsed * MIB} bytes).`, 'set it to a number of megabytes, e.g. 100.', 'a number greater than 0');
      parsed = undefined;
    }
    if (parsed === undefined) ok = false;
    else (ingestion as unknown as Record<string, string | number>)[key] = parsed;
  }
  return ok ? ingestion : undefined;
}

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function checkNodes(c: Checker, node: YamlNode | null | undefined): NodeConfig[] | undefined {
  if (!isSeq(node)) {
    c.error(node, 'nodes', `expected a list of nodes, got ${describe(node)}.`, 'write each node as a list item: - { id: node-1, path: ./received_chunks/node-1 }.', 'a list');
    return undefined;
  }
  const nodes: NodeConfig[] = [];
  const seen = new Set<string>();
  let ok = true;
  node.items.forEach((item, i) => {
    const path = `nodes[${i}]`;
    if (!isMap(item)) {
      c.error(item as YamlNode, path, `expected a node mapping, got ${describe(item as YamlNode)}.`, 'write it as { id: node-1, path: ./received_chunks/node-1 }.', 'a mapping');
      ok = false;
      return;
    }
    c.checkKeys(item, path, NODE_KEYS);
    const idNode = valueNode(item, 'id');
    const id = idNode === undefined ? undefined : readString(c, idNode, `${path}.id`, 'node-1');
    if (idNode === undefined) c.error(item, `${path}.id`, 'missing required key id.', 'add id: node-1 (letters, digits, . _ -).');
    if (id === undefined) {
      ok = false;
      return;
    }
    if (!NODE_ID.test(id)) {
      c.error(idNode, `${path}.id`, `node id "${id}" has characters that are not allowed.`, 'use letters, digits, dot, underscore and dash (max 64), starting with a letter or digit.');
      ok = false;
      return;
    }
    if (seen.has(id)) {
      c.error(idNode, `${path}.id`, `node id "${id}" is used twice.`, 'give every node its own id.');
      ok = false;
      return;
    }
    seen.add(id);
    const entry: NodeConfig = { id };
    const cloudNode = valueNode(item, 'cloud');
    if (cloudNode !== undefined) {
      const cloud = readEnum(c, cloudNode, `${path}.cloud`, CLOUDS);
      if (cloud) entry.cloud = cloud;
      else ok = false;
    }
    for (const key of ['path', 'url', 'token_env'] as const) {
      const value = valueNode(item, key);
      if (value === undefined) continue;
      const text = readString(c, value, `${path}.${key}`, key === 'url' ? 'http://127.0.0.1:7070' : key === 'path' ? './received_chunks/node-1' : 'NODE_1_TOKEN');
      if (text === undefined) ok = false;
      else entry[key] = text;
    }
    if (!entry.path === !entry.url) {
      c.error(item, path, entry.path ? 'a node has either path or url, not both.' : 'a node needs a path (local folder) or a url (node agent).', 'keep path: for a local folder node, or url: http://host:port for an agent.');
      ok = false;
    }
    if (entry.url && !/^https?:\/\/[^\s/]+/.test(entry.url)) {
      c.error(valueNode(item, 'url'), `${path}.url`, `expected an http(s) URL, got "${entry.url}".`, 'write it as http://host:port.', 'an http(s) URL');
      ok = false;
    }
    if (entry.token_env && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(entry.token_env)) {
      c.error(valueNode(item, 'token_env'), `${path}.token_env`, `"${entry.token_env}" is not an environment variable name.`, 'name the variable that holds the token, e.g. NODE_1_TOKEN (not the token itself).');
      ok = false;
    }
    nodes.push(entry);
  });
  if (nodes.length === 0 && ok) {
    c.error(node, 'nodes', 'the nodes list is empty.', 'add at least one node, or remove nodes: to get one folder node per cloud.');
    return undefined;
  }
  return ok ? nodes : undefined;
}

const CLUSTER_KEYS = ['nats_url', ...Object.keys(CLUSTER_DEFAULTS)] as (keyof ClusterConfig)[];
/** Stream and consumer names: NATS refuses dots, wildcards, spaces and path separators in them. */
const NATS_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const NATS_URL = /^(nats|tls|ws|wss):\/\/[^\s/@]+(:\d+)?\/?$/;

const CLUSTER_NUMBERS: Partial<Record<keyof ClusterConfig, NumberRule>> = {
  ack_wait_seconds: { integer: false, min: 0, exclusiveMin: true, example: '30' },
  max_deliver: { integer: true, min: 1, exclusiveMin: false, example: '5' },
  worker_timeout_seconds: { integer: false, min: 0, exclusiveMin: true, example: '10' },
};

function checkNatsUrls(c: Checker, node: YamlNode | null | undefined, text: string): boolean {
  for (const url of text.split(',').map((u) => u.trim())) {
    if (/^[a-z]+:\/\/[^/\s]*@/i.test(url)) {
      c.error(node, 'cluster.nats_url', 'credentials must not be stored in the config file.', 'remove the user:password@ part; give the server URL with credentials in the NATS_URL environment variable instead.');
      return false;
    }
    if (!NATS_URL.test(url)) {
      c.error(node, 'cluster.nats_url', `expected a NATS server URL, got "${url}".`, 'write it as nats://host:4222 (several separated by commas for a cluster).', 'nats://host:port');
      return false;
    }
  }
  return true;
}

function checkCluster(c: Checker, node: YamlNode | null | undefined): ClusterConfig | undefined {
  if (!isMap(node)) {
    c.error(node, 'cluster', `expected a mapping of settings, got ${describe(node)}.`, 'write it as cluster: { nats_url: "nats://127.0.0.1:4222" } or remove it to use the defaults and NATS_URL.', 'a mapping');
    return undefined;
  }
  c.checkKeys(node, 'cluster', CLUSTER_KEYS);
  const cluster: ClusterConfig = { ...CLUSTER_DEFAULTS };
  let ok = true;
  for (const key of CLUSTER_KEYS) {
    const value = valueNode(node, key);
    if (value === undefined) continue;
    const path = `cluster.${key}`;
    const rule = CLUSTER_NUMBERS[key];
    if (rule) {
      const parsed = readNumber(c, value, path, rule);
      if (parsed === undefined) ok = false;
      else (cluster as unknown as Record<string, number>)[key] = parsed;
      continue;
    }
    const text = readString(c, value, path, key === 'nats_url' ? '"nats://127.0.0.1:4222"' : `"${String(CLUSTER_DEFAULTS[key as Exclude<keyof ClusterConfig, 'nats_url'>])}"`);
    if (text === undefined) ok = false;
    else if (key === 'nats_url') {
      if (checkNatsUrls(c, value, text)) cluster.nats_url = text;
      else ok = false;
    } else if (!NATS_NAME.test(text)) {
      c.error(value, path, `"${text}" is not a usable NATS name.`, 'use letters, digits, "_" and "-" only (at most 64), e.g. CLOUD_INGEST_WORK.', 'letters, digits, _ and -');
      ok = false;
    } else (cluster as unknown as Record<string, string>)[key] = text;
  }
  if (ok && cluster.stream === cluster.result_stream) {
    c.error(valueNode(node, 'result_stream') ?? node, 'cluster.result_stream', `the work stream and the result stream are both "${cluster.stream}".`, 'give result_stream its own name, e.g. CLOUD_INGEST_RESULTS.');
    ok = false;
  }
  return ok ? cluster : undefined;
}

/** Pull mode: the workers are node agents, so every node must be one (a folder node cannot fetch its own chunks). */
function checkPullNodes(c: Checker, root: YAMLMap, nodes: NodeConfig[] | undefined): void {
  const modeNode = valueNode(valueNode(root, 'ingestion') as YAMLMap, 'mode');
  if (!nodes) {
    c.error(modeNode, 'ingestion.mode', 'pull mode needs node agents, but no nodes are configured (the default nodes are local folders).', 'add nodes: with url: and token_env: for each agent started with --nats, or set mode: push.');
    return;
  }
  const folders = nodes.filter((n) => !n.url).map((n) => n.id);
  if (folders.length > 0) {
    c.error(modeNode, 'ingestion.mode', `pull mode needs node agents; ${folders.join(', ')} ${folders.length === 1 ? 'is a folder node' : 'are folder nodes'}.`, 'give every node a url: (an agent started with --nats and --id), or set mode: push.');
  }
}

export function validateConfigText(text: string, fileName: string): ValidationResult {
  const lines = new LineCounter();
  // Repeated keys are found in one pass (repeatedKeys), not by the parser's `uniqueKeys`, which compares each key
  // with every key before it in its mapping: a 1 MiB file of 100,000 keys took over a minute.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const errors = [...doc.errors, ...repeatedKeys(doc)];
  const c = new Checker(fileName, lines);
  if (errors.length > 0) {
    // Indentation mistakes are named on their own line in plain words; the parser's reports of them (on that
    // line or the ones either side) are dropped, and the parser's other errors are kept, one per line.
    const explained = new Set<number>();
    for (const p of findIndentationProblems(text)) {
      c.diagnostics.push({ severity: 'error', file: fileName, line: p.line, column: p.column, key: p.key, message: p.message, fix: p.fix });
      for (let line = p.previousLine; line <= p.nextLine; line++) explained.add(line);
    }
    for (const err of errors) {
      const pos = lines.linePos(err.pos[0]);
      if (explained.has(pos.line)) continue;
      explained.add(pos.line);
      const message = err.message.split('\n')[0] ?? err.message;
      c.diagnostics.push({ severity: 'error', file: fileName, line: pos.line, column: pos.col, key: '', message: `YAML syntax error: ${message}`, fix: yamlFix(err.code) });
    }
    c.diagnostics.sort((a, b) => a.line - b.line);
    return { diagnostics: c.diagnostics };
  }
  return { diagnostics: c.diagnostics, ...checkDocument(c, doc) };
}

/** The parser's DUPLICATE_KEY error (as `uniqueKeys: true` makes it) at each scalar key repeated in its mapping. */
function repeatedKeys(doc: Document): YAMLParseError[] {
  const errors: YAMLParseError[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const { key } of map.items) {
        // The parser compares scalar keys by value with ===, so NaN never repeats; other keys only by identity.
        if (!isScalar(key) || Number.isNaN(key.value)) continue;
        if (!seen.has(key.value)) seen.add(key.value);
        else errors.push(new YAMLParseError([key.range?.[0] ?? 0, key.range?.[1] ?? 0], 'DUPLICATE_KEY', 'Map keys must be unique'));
      }
    },
  });
  return errors;
}

function yamlFix(code: string): string {
  if (code === 'DUPLICATE_KEY') return 'remove or rename the repeated key.';
  if (code === 'TAB_AS_INDENT') return 'indent with spaces, not tabs.';
  return 'check the indentation, colons and quotes on this line.';
}

function checkDocument(c: Checker, doc: Document): { config?: IngestConfig } {
  const root = doc.contents as YamlNode | null;
  if (!isMap(root)) {
    c.error(root, '', `expected a mapping with data_sources and ingestion, got ${describe(root)}.`, 'start from the example in README.md (data_sources:, ingestion:, use_local_simulation:).', 'a mapping');
    return {};
  }
  c.checkKeys(root, '', TOP_KEYS);
  const dataSources = checkDataSources(c, valueNode(root, 'data_sources'), keyNode(root, 'data_sources') ?? root);
  const ingestion = checkIngestion(c, valueNode(root, 'ingestion'));
  const simNode = valueNode(root, 'use_local_simulation');
  const useLocalSimulation = simNode === undefined ? true : readBoolean(c, simNode, 'use_local_simulation');
  const nodesNode = valueNode(root, 'nodes');
  const nodes = nodesNode === undefined ? undefined : checkNodes(c, nodesNode);
  const clusterNode = valueNode(root, 'cluster');
  const cluster = clusterNode === undefined ? undefined : checkCluster(c, clusterNode);
  if (!dataSources || !ingestion || useLocalSimulation === undefined || (nodesNode !== undefined && !nodes) || (clusterNode !== undefined && !cluster)) return {};
  checkSimulationFolders(c, root, dataSources, useLocalSimulation);
  if (ingestion.mode === 'pull') checkPullNodes(c, root, nodes);
  if (nodes && ingestion.replicas > nodes.length) {
    c.error(valueNode(valueNode(root, 'ingestion') as YAMLMap, 'replicas'), 'ingestion.replicas', `replicas is ${ingestion.replicas} but only ${nodes.length} node(s) are configured.`, `lower replicas to at most ${nodes.length}, or add nodes.`);
  }
  if (ingestion.pack_below_mb > 0 && ingestion.mode === 'pull') {
    c.error(valueNode(valueNode(root, 'ingestion') as YAMLMap, 'pack_below_mb'), 'ingestion.pack_below_mb', 'packing files into shards is done by the machine that reads them (mode: push); pull-mode workers read whole chunks of files.', 'remove pack_below_mb, or use mode: push.');
  }
  if (ingestion.pack_below_mb > ingestion.chunk_size_mb) {
    c.error(valueNode(valueNode(root, 'ingestion') as YAMLMap, 'pack_below_mb'), 'ingestion.pack_below_mb', `pack_below_mb is ${ingestion.pack_below_mb} but chunk_size_mb is ${ingestion.chunk_size_mb}: packed files go into shards of one chunk.`, `lower pack_below_mb to at most ${ingestion.chunk_size_mb} (e.g. 1), or raise chunk_size_mb.`);
  }
  if (c.diagnostics.some((d) => d.severity === 'error')) return {};
  const config: IngestConfig = { data_sources: dataSources, ingestion, use_local_simulation: useLocalSimulation };
  if (nodes) config.nodes = nodes;
  if (cluster) config.cluster = cluster;
  return { config };
}

function checkSimulationFolders(c: Checker, root: YAMLMap, sources: IngestConfig['data_sources'], simulate: boolean): void {
  if (!simulate) return;
  const sourcesNode = valueNode(root, 'data_sources') as YAMLMap;
  for (const [cloud, source] of Object.entries(sources) as [CloudName, DataSourceConfig][]) {
    if (source.type === 'local' || source.local_simulation) continue;
    c.report('warning', valueNode(sourcesNode, cloud), `data_sources.${cloud}.local_simulation`, `use_local_simulation is true but ${cloud} has no local_simulation folder; ingesting from ${cloud} will fail.`, `add local_simulation: "./test_data/${cloud}_simulation", or set use_local_simulation: false.`);
  }
}
