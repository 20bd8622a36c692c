// Bad-input fixtures: a whole project in one temp root (config, data, nodes, manifests), the CLI run as a child
// with that root as its working directory, and a snapshot of the root's tree so a test can prove nothing was
// written outside the node folders and the manifest folder.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { expect } from 'vitest';
import { runCli } from '../helpers/agents.ts';
import type { CliResult } from '../helpers/agents.ts';
import { hasStackTrace } from '../faults/harness.ts';

export { EXIT } from '../../electron/cli/main.ts';

const roots: string[] = [];

export interface BadProject {
  root: string;
  configPath: string;
  data: string;
}

/** A project root with `data/` (the local source) and a config written from `yaml` (or the default below). */
export async function badProject(yaml?: string): Promise<BadProject> {
  const root = await mkdtemp(join(tmpdir(), 'ci-bad-input-'));
  roots.push(root);
  await mkdir(join(root, 'config'));
  await mkdir(join(root, 'data'));
  const configPath = join(root, 'config', 'data_sources.yml');
  await writeFile(configPath, yaml ?? defaultYaml());
  return { root, configPath, data: join(root, 'data') };
}

export function defaultYaml(o: { chunkMb?: number | string; nodes?: string[]; source?: string; extra?: string } = {}): string {
  return [
    'data_sources:',
    o.source ?? '  local: { type: local, path: ./data }',
    'ingestion:',
    `  chunk_size_mb: ${o.chunkMb ?? 1}`,
    '  max_concurrent_chunks: 4',
    '  retry_attempts: 1',
    '  retry_delay_seconds: 0.05',
    '  manifest_dir: ./manifests',
    ...(o.extra ? [o.extra] : []),
    'use_local_simulation: false',
    'nodes:',
    ...(o.nodes ?? ['  - { id: n1, path: ./nodes/n1 }', '  - { id: n2, path: ./nodes/n2 }']),
    '',
  ].join('\n');
}

export async function removeBadProjects(): Promise<void> {
  await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })));
}

export type { CliResult };

/** Runs `cloud-ingest ...args` with `cwd` as working directory; never throws on a non-zero exit. */
export function cli(args: string[], o: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult> {
  return runCli(args, o.env ?? {}, o.timeoutMs ?? 60_000, o.cwd);
}

/** The exit code is the documented one and nothing in front of the user looks like a crash. */
export function expectCleanExit(r: CliResult, code: number): void {
  const shown = `exit ${r.code}\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-3000)}`;
  expect(r.code, shown).toBe(code);
  expect(hasStackTrace(r.stdout) || hasStackTrace(r.stderr), `a stack trace was printed:\n${shown}`).toBe(false);
  expect(r.stderr, shown).not.toMatch(/\b(TypeError|ReferenceError|RangeError|SyntaxError|ERR_[A-Z_]+)\b|Unhandled|uncaught/i);
  // Node's own process warnings ("(node:1234) MaxListenersExceededWarning: Possible EventEmitter memory leak…").
  expect(r.stderr, shown).not.toMatch(/\(node:\d+\)/);
}

/** Every path under `root` (folders with a trailing separator), relative to it. */
export async function tree(root: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    const rel = relative(root, join(entry.parentPath, entry.name));
    out.add(entry.isDirectory() ? rel + sep : rel);
  }
  return out;
}

/** Paths that appeared under `root` since `before`, outside the allowed folders (relative to root). */
export async function writtenOutside(root: string, before: Set<string>, allowed: string[]): Promise<string[]> {
  const after = await tree(root);
  return [...after].filter((p) => !before.has(p) && !allowed.some((a) => p === a + sep || p.startsWith(a + sep)));
}
