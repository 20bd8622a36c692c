// A packed run killed outright (SIGKILL of the CLI process, mid-run) and resumed gives the same shards, byte for
// byte, as a run of the same files that was never interrupted: packing is a function of the listing, and shards
// journaled before the kill are kept as they were.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../shared/types.ts';
import { readShardsInPython, writeSamples } from '../helpers/samples.ts';
import { startCli } from '../helpers/cli-process.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';

afterAll(removeTempDirs);


function config(side: string): string {
  return [
    'data_sources:',
    '  local: { type: local, path: ./data }',
    'ingestion: { chunk_size_mb: 0.25, pack_below_mb: 0.1, max_concurrent_chunks: 1, retry_attempts: 1, retry_delay_seconds: 0.05, manifest_dir: ./' + side + '/runs }',
    'nodes:',
    `  - { id: n1, path: ./${side}/n1 }`,
    `  - { id: n2, path: ./${side}/n2 }`,
    '',
  ].join('\n');
}

/** Chunk lines in the run's journal so far (0 before it exists). */
async function journaledChunks(dir: string): Promise<number> {
  const name = (await readdir(dir).catch(() => [] as string[])).find((n) => n.endsWith('.journal.jsonl'));
  if (!name) return 0;
  return (await readFile(join(dir, name), 'utf8')).split('\n').filter((line) => line.includes('"type":"chunk"')).length;
}

const shardShape = (m: Manifest) =>
  m.chunks
    .filter((c) => c.id.startsWith('shard-'))
    .map((c) => [c.id, c.size, c.checksum])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));

describe('a packed run killed and resumed', () => {
  it('gives the same shards as a run that was never interrupted', { timeout: 120_000 }, async () => {
    const root = await tempDir('ci-pack-kill-');
    await mkdir(join(root, 'config'));
    const expected = await writeSamples(join(root, 'data'), { samples: 2500, extensions: ['jpg', 'json'] });
    await writeFile(join(root, 'config', 'a.yml'), config('a'));
    await writeFile(join(root, 'config', 'b.yml'), config('b'));

    const killed = startCli(root, ['run', '--config', 'config/a.yml', '--json']);
    let journaled = 0;
    for (let waited = 0; journaled < 2 && waited < 60_000; waited += 10) {
      await new Promise((r) => setTimeout(r, 10));
      journaled = await journaledChunks(join(root, 'a', 'runs'));
    }
    killed.child.kill('SIGKILL');
    const end = await killed.exit;
    expect(end.signal, `the run ended before it could be killed:\n${end.stdout.slice(-500)}`).toBe('SIGKILL');
    expect(journaled).toBeGreaterThanOrEqual(2);
    expect((await readdir(join(root, 'a', 'runs'))).filter((n) => n.endsWith('.json'))).toEqual([]);

    const resumed = await startCli(root, ['run', '--config', 'config/a.yml', '--resume', 'latest', '--json']).exit;
    expect(resumed.code, resumed.stderr.slice(-2000)).toBe(0);
    const clean = await startCli(root, ['run', '--config', 'config/b.yml', '--json']).exit;
    expect(clean.code, clean.stderr.slice(-2000)).toBe(0);

    const after = JSON.parse(await readFile(JSON.parse(resumed.stdout).manifest as string, 'utf8')) as Manifest;
    const reference = JSON.parse(await readFile(JSON.parse(clean.stdout).manifest as string, 'utf8')) as Manifest;
    expect(after.status).toBe('complete');
    expect(shardShape(after).length).toBeGreaterThan(journaled);
    expect(shardShape(after)).toEqual(shardShape(reference));
    const files = (m: Manifest) => m.files.map((f) => [f.key, f.checksum, f.packed?.shard, f.packed?.offset]);
    expect(files(after)).toEqual(files(reference));
    const readBack = await readShardsInPython(after.chunks.filter((c) => c.id.startsWith('shard-')).map((c) => c.path));
    expect(readBack.tarfile).toEqual(Object.fromEntries(expected));
  });
});
