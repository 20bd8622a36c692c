// Run records (manifests, journals) are kept out of the node folders' parent by default: the original design's
// evenness check lists every folder in received_chunks/ as a node and counted a manifests/ folder there as a node
// holding nothing. Records an older version left in received_chunks/manifests are still found by runs, verify and
// run --resume.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { badProject, cli, EXIT, expectCleanExit, removeBadProjects } from '../bad-input/helpers.ts';
import type { BadProject } from '../bad-input/helpers.ts';

afterAll(removeBadProjects);

/** Two configured clouds and no `nodes`: the default nodes, aws-node-1 and local-node-1 under ./received_chunks/. */
function yaml(extraIngestion = ''): string {
  return [
    'data_sources:',
    '  aws: { type: s3, bucket: ml-training-data-aws, local_simulation: ./test_data/aws_s3_simulation }',
    '  local: { type: local, path: ./data }',
    'ingestion:',
    '  chunk_size_mb: 1',
    '  retry_attempts: 1',
    '  retry_delay_seconds: 0.05',
    ...(extraIngestion ? [extraIngestion] : []),
    'use_local_simulation: true',
    '',
  ].join('\n');
}

async function project(extraIngestion = ''): Promise<BadProject> {
  const p = await badProject(yaml(extraIngestion));
  await mkdir(join(p.root, 'test_data', 'aws_s3_simulation'), { recursive: true });
  for (let i = 0; i < 6; i++) await ensureDataFile(join(p.data, `part-${i}.bin`), 100_000 + i, `part-${i}`);
  return p;
}

const run = (p: BadProject, ...args: string[]) => cli(['run', '--config', p.configPath, '--cloud', 'local', ...args], { cwd: p.root });

describe('where run records live', () => {
  it("passes the original design's evenness check: every folder in received_chunks/ is a node holding chunks", async () => {
    const p = await project();
    const r = await run(p, '--json');
    expectCleanExit(r, EXIT.ok);
    const receiveDir = join(p.root, 'received_chunks');
    const chunksPerNode = new Map<string, number>();
    for (const entry of await readdir(receiveDir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const names = await readdir(join(receiveDir, entry.name), { recursive: true });
      chunksPerNode.set(entry.name, names.filter((n) => n.endsWith('.chunk')).length);
    }
    expect([...chunksPerNode.keys()].sort()).toEqual(['aws-node-1', 'local-node-1']);
    const avg = [...chunksPerNode.values()].reduce((a, b) => a + b, 0) / chunksPerNode.size;
    for (const count of chunksPerNode.values()) expect(Math.abs(count - avg) / avg).toBeLessThan(0.3);
    const manifest = (JSON.parse(r.stdout) as { manifest: string }).manifest;
    expect(manifest.startsWith(join(p.root, '.cloud-ingest', 'runs') + '/')).toBe(true);
  });

  it('an explicit manifest_dir is used as it is', async () => {
    const p = await project('  manifest_dir: ./received_chunks/manifests');
    const r = await run(p, '--json');
    expectCleanExit(r, EXIT.ok);
    expect((JSON.parse(r.stdout) as { manifest: string }).manifest.startsWith(join(p.root, 'received_chunks', 'manifests') + '/')).toBe(true);
  });

  it('runs an older version recorded in received_chunks/manifests are still listed, verified and resumed', async () => {
    // As an older version left them: the default manifest folder was ./received_chunks/manifests.
    const p = await project('  manifest_dir: ./received_chunks/manifests');
    const first = await run(p, '--json');
    expectCleanExit(first, EXIT.ok);
    const old = JSON.parse(first.stdout) as { runId: string; manifest: string };
    // A second one, killed before it finished: its journal has no end line, and it wrote no manifest.
    const second = await run(p, '--json');
    expectCleanExit(second, EXIT.ok);
    const killed = JSON.parse(second.stdout) as { runId: string; manifest: string };
    const journal = join(p.root, 'received_chunks', 'manifests', `${killed.runId}.journal.jsonl`);
    const lines = (await readFile(journal, 'utf8')).split('\n').filter((l) => l && !l.includes('"type":"end"'));
    await writeFile(journal, `${lines.join('\n')}\n`);
    await rm(killed.manifest);
    await writeFile(p.configPath, yaml());

    const runs = await cli(['runs', '--config', p.configPath, '--json'], { cwd: p.root });
    expectCleanExit(runs, EXIT.ok);
    const listed = JSON.parse(runs.stdout) as { runs: { runId: string }[]; resumable: { runId: string }[] };
    expect(listed.runs.map((m) => m.runId)).toEqual([old.runId]);
    expect(listed.resumable.map((m) => m.runId)).toContain(killed.runId);

    const verify = await cli(['verify', '--config', p.configPath], { cwd: p.root });
    expectCleanExit(verify, EXIT.ok);
    expect(verify.stdout).toContain(old.runId);

    const resumed = await run(p, '--resume', killed.runId, '--json');
    expectCleanExit(resumed, EXIT.ok);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ runId: killed.runId, status: 'complete' });

    // And received_chunks/ holds nodes only again.
    const left = (await readdir(join(p.root, 'received_chunks'))).sort();
    expect(left).toEqual(['aws-node-1', 'local-node-1']);
  });
});
