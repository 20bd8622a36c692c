// Issue 12, finding 6: the resume index and the run journal at their edges. A node whose listing fails costs only
// its reuse; a journal that cannot be written is said, and a finished run is never offered for resuming; `--resume
// latest` only adopts runs of the same config.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runIngest } from '../../electron/engine/ingest.ts';
import { journalPath, listResumableRuns } from '../../electron/engine/journal.ts';
import { manifestDir } from '../../electron/engine/manifest.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import type { IngestEvent } from '../../shared/types.ts';
import { cleanupAgents, runCli, spawnAgent } from '../helpers/agents.ts';
import { detection, MIB, tempProject, writeConfig } from './fixtures.ts';

afterAll(cleanupAgents);

/** Forwards everything to the agent, except that listing its chunks answers 500 (a node whose index is broken). */
async function brokenListingProxy(agentPort: number): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url?.startsWith('/v1/chunks?')) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'internal', message: 'index unreadable' } }));
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port: agentPort, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('the resume index', () => {
  it("one node's listing error costs only its reuse: the run warns and completes", async () => {
    const root = await tempProject();
    await ensureDataFile(join(root, 'data', 'a.bin'), 3 * MIB, 'a.bin');
    const [good, broken] = await Promise.all([spawnAgent({ token: null }), spawnAgent({ token: null })]);
    const proxy = await brokenListingProxy(broken!.port);
    try {
      const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, max_concurrent_chunks: 2, retry_attempts: 1, retry_delay_seconds: 0.05 }\nnodes:\n  - { id: good, url: "${good!.url}" }\n  - { id: broken, url: "${proxy.url}" }\n`;
      const loaded = await writeConfig(root, yaml);
      const events: IngestEvent[] = [];
      const result = await runIngest({ loaded, detection: detection('local'), onEvent: (e) => events.push(e) });
      expect(result.manifest.status).toBe('complete');
      expect(events.some((e) => e.type === 'log' && e.level === 'warn' && e.message.includes('node broken: listing its chunks failed'))).toBe(true);
    } finally {
      await proxy.close();
    }
  });
});

describe('the run journal', () => {
  async function project(root: string, name: string, source: string) {
    await ensureDataFile(join(root, 'data', 'a.bin'), 2 * MIB, 'a.bin');
    const yaml = `data_sources:\n  local: { type: local, path: ${source} }\ningestion: { chunk_size_mb: 1, manifest_dir: ./runs }\nnodes:\n  - { id: n1, path: ./nodes/n1 }\n`;
    const path = join(root, 'config', name);
    await writeFile(path, yaml);
    return path;
  }

  it('a journal that cannot be written is said, and the finished run is not offered for resuming', async () => {
    const root = await tempProject();
    const loaded = await writeConfig(root, `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, manifest_dir: ./runs }\nnodes:\n  - { id: n1, path: ./nodes/n1 }\n`);
    await ensureDataFile(join(root, 'data', 'a.bin'), 2 * MIB, 'a.bin');
    const runId = '2026-01-01T00-00-00-000Z-journal';
    await rm(manifestDir(loaded), { recursive: true, force: true });
    await ensureDataFile(join(manifestDir(loaded), '.keep'), 0, '.keep');
    // Every write to /dev/full fails with ENOSPC, as a journal on a full disk would (its start line is written
    // under the temp name, then renamed).
    await symlink('/dev/full', `${journalPath(loaded, runId)}.tmp`);
    const events: IngestEvent[] = [];
    const result = await runIngest({ loaded, detection: detection('local'), runId, onEvent: (e) => events.push(e) });
    expect(result.manifest.status).toBe('complete');
    expect(events.some((e) => e.type === 'log' && e.level === 'error' && e.message.includes("the run's journal could not be written"))).toBe(true);
    expect((await readdir(manifestDir(loaded))).filter((n) => n.includes('.journal.'))).toEqual([]);
    // What writes that failed mid-run leave: a journal with its start and chunks but no end line.
    const start = { type: 'start', version: 1, runId, startedAt: result.manifest.startedAt, cloud: 'local', detection: detection('local'), pattern: '**', chunkSize: MIB, algorithm: 'md5', configPath: loaded.path };
    await writeFile(journalPath(loaded, runId), `${JSON.stringify(start)}\n`);
    expect(await listResumableRuns(loaded)).toEqual([]);
  });

  it('run --resume latest never adopts a run of another config, nor one that failed before delivering anything', async () => {
    const root = await tempProject();
    const broken = await project(root, 'broken.yml', './missing-folder');
    const fine = await project(root, 'fine.yml', './data');
    const failed = await runCli(['run', '--config', broken, '--json']);
    expect(failed.code).toBe(4);
    // The failed run left its journal beside where the other config's runs go.
    expect((await readdir(join(root, 'runs'))).filter((n) => n.endsWith('.journal.jsonl'))).toHaveLength(1);
    const resumed = await runCli(['run', '--config', fine, '--resume', 'latest']);
    expect(resumed.code).toBe(2);
    expect(resumed.stderr).toContain('There is no unfinished run to resume');
  });
});
