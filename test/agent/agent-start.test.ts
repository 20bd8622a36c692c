// Starting a real agent process where it cannot serve: it takes its port before it touches its folder, so a
// failed start leaves the folder exactly as it was.
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAgents, newToken, runCli } from '../helpers/agents.ts';
import { tempDir } from '../helpers/temp.ts';

afterAll(cleanupAgents);

describe('an agent started on a busy port', () => {
  it('exits 2 naming the port, and leaves its folder untouched: uploads in progress, lock and orphans stay', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;

    const dir = await tempDir('ci-agent-busy-');
    await mkdir(join(dir, '.incoming'), { recursive: true });
    await writeFile(join(dir, '.incoming', 'upload-in-progress.part'), 'bytes of an upload another agent is receiving');
    await writeFile(join(dir, 'orphan_chunk_0.chunk'), 'data without metadata');
    const deadPid = spawnSync('true').pid;
    await writeFile(join(dir, '.agent.lock'), `${deadPid}\n`);
    const before = await stat(join(dir, '.agent.lock'));

    const result = await runCli(['agent', '--port', String(port), '--dir', dir, '--token-env', 'BUSY_TOKEN'], { BUSY_TOKEN: newToken() });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
    expect(await readdir(join(dir, '.incoming'))).toEqual(['upload-in-progress.part']);
    expect((await readdir(dir)).sort()).toEqual(['.agent.lock', '.incoming', 'orphan_chunk_0.chunk']);
    expect(await readFile(join(dir, '.agent.lock'), 'utf8')).toBe(`${deadPid}\n`);
    expect((await stat(join(dir, '.agent.lock'))).mtimeMs).toBe(before.mtimeMs);

    // A folder that does not exist yet is not created either.
    const missing = join(await tempDir('ci-agent-busy-'), 'not-yet');
    const second = await runCli(['agent', '--port', String(port), '--dir', missing, '--token-env', 'BUSY_TOKEN'], { BUSY_TOKEN: newToken() });
    expect(second.code).toBe(2);
    await expect(stat(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    await new Promise<void>((r) => blocker.close(() => r()));
  });
});
