// Bad nodes, through the CLI: chunks larger than any node takes, no healthy node, an unreachable node among
// healthy ones, a wrong token, and lying nodes (they said they stored it; the bytes are gone or wrong) that
// verify must catch. Exit codes are the documented ones, no stack traces, nothing written outside node folders.
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { freePort } from '../helpers/emulators.ts';
import { cleanupAgents, spawnAgent } from '../helpers/agents.ts';
import { agentChunkFiles, agentChunkPath } from '../helpers/agent-store.ts';
import { md5OfFile, MiB } from '../faults/harness.ts';
import { badProject, cli, defaultYaml, EXIT, expectCleanExit, removeBadProjects, tree, writtenOutside } from './helpers.ts';
import type { BadProject } from './helpers.ts';

afterAll(async () => {
  await cleanupAgents();
  await removeBadProjects();
});

const ALLOWED = ['nodes', 'manifests'];

async function withData(p: BadProject, files: Record<string, number>): Promise<Map<string, string>> {
  const md5 = new Map<string, string>();
  for (const [name, size] of Object.entries(files)) {
    await ensureDataFile(join(p.data, name), size, name);
    md5.set(name, await md5OfFile(join(p.data, name)));
  }
  return md5;
}

function agentLine(id: string, url: string, tokenEnv: string): string {
  return `  - { id: ${id}, url: "${url}", token_env: ${tokenEnv} }`;
}

interface Summary {
  status: string;
  manifest: string;
  chunks: number;
  nodes: { id: string; chunks: number; healthy: boolean }[];
}

describe('chunks larger than any node takes', () => {
  it('every agent refuses chunks over its --max-chunk-bytes: exit 3, the limit and the size are named', async () => {
    const agents = await Promise.all([spawnAgent({ args: ['--max-chunk-bytes', '1MiB'] }), spawnAgent({ args: ['--max-chunk-bytes', '1MiB'] })]);
    const env = { BAD_A1_TOKEN: agents[0]!.token!, BAD_A2_TOKEN: agents[1]!.token! };
    const p = await badProject(defaultYaml({ chunkMb: 2, nodes: [agentLine('a1', agents[0]!.url, 'BAD_A1_TOKEN'), agentLine('a2', agents[1]!.url, 'BAD_A2_TOKEN')] }));
    await withData(p, { 'big.bin': 5 * MiB });
    const before = await tree(p.root);
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'local'], { cwd: p.root, env });
    expectCleanExit(r, EXIT.noHealthyNode);
    expect(r.stderr).toMatch(/2097152 bytes; this agent accepts at most 1048576 \(--max-chunk-bytes\)/);
    expect(r.stderr).toMatch(/No healthy node/);
    expect(await writtenOutside(p.root, before, ALLOWED)).toEqual([]);
    // Only the last chunk (1 MiB) fits an agent; nothing over the limit was kept.
    for (const a of agents) for (const name of (await agentChunkFiles(a.dir)).filter((n) => n.endsWith('.chunk'))) expect(name).toBe(relative(a.dir, agentChunkPath(a.dir, 'big.bin_chunk_2')));
  });

  it('a chunk larger than every agent quota (--max-bytes): exit 3, the quota is named', async () => {
    const agents = await Promise.all([spawnAgent({ maxBytes: MiB }), spawnAgent({ maxBytes: MiB })]);
    const env = { BAD_Q1_TOKEN: agents[0]!.token!, BAD_Q2_TOKEN: agents[1]!.token! };
    const p = await badProject(defaultYaml({ chunkMb: 4, nodes: [agentLine('q1', agents[0]!.url, 'BAD_Q1_TOKEN'), agentLine('q2', agents[1]!.url, 'BAD_Q2_TOKEN')] }));
    await withData(p, { 'big.bin': 6 * MiB });
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'local'], { cwd: p.root, env });
    expectCleanExit(r, EXIT.noHealthyNode);
    expect(r.stderr).toMatch(/--max-bytes|quota|no room|full/i);
  });
});

describe('no healthy node', () => {
  it('folder nodes that cannot be created (a file is in the way): exit 3, each node and its reason named', async () => {
    const p = await badProject(defaultYaml({ nodes: ['  - { id: n1, path: ./blocker/n1 }', '  - { id: n2, path: ./blocker/n2 }'] }));
    await writeFile(join(p.root, 'blocker'), 'a file, not a folder');
    await withData(p, { 'a.bin': 3 * MiB });
    const before = await tree(p.root);
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'local'], { cwd: p.root });
    expectCleanExit(r, EXIT.noHealthyNode);
    expect(r.stderr).toMatch(/No healthy node/);
    expect(r.stderr).toMatch(/n1 \(.*blocker\/n1\): unhealthy/);
    expect(r.stderr).toMatch(/n2 \(.*blocker\/n2\): unhealthy/);
    expect(r.stderr).toMatch(/Fix:/);
    expect(await writtenOutside(p.root, before, [])).toEqual([]);
  });

  it('agents nobody runs: exit 3 from run and from nodes, "is the agent running" named per node', async () => {
    const ports = [await freePort(), await freePort()];
    const p = await badProject(defaultYaml({ nodes: ports.map((port, i) => agentLine(`gone${i}`, `http://127.0.0.1:${port}`, 'BAD_GONE_TOKEN')) }));
    await withData(p, { 'a.bin': MiB });
    const env = { BAD_GONE_TOKEN: 'x'.repeat(32) };
    const before = await tree(p.root);
    const run = await cli(['run', '--config', p.configPath, '--cloud', 'local'], { cwd: p.root, env });
    expectCleanExit(run, EXIT.noHealthyNode);
    for (const port of ports) expect(run.stderr).toContain(`127.0.0.1:${port}`);
    expect(run.stderr).toMatch(/refused the connection.*is the agent running/);
    const nodes = await cli(['nodes', '--config', p.configPath], { cwd: p.root, env });
    expectCleanExit(nodes, EXIT.noHealthyNode);
    expect(await writtenOutside(p.root, before, [])).toEqual([]);
  });

  it('an agent with the wrong token, or the token variable unset: exit 3 with the variable to fix', async () => {
    const agent = await spawnAgent();
    const p = await badProject(defaultYaml({ nodes: [agentLine('a1', agent.url, 'BAD_TOKEN_VAR')] }));
    await withData(p, { 'a.bin': MiB });
    const wrong = await cli(['run', '--config', p.configPath, '--cloud', 'local'], { cwd: p.root, env: { BAD_TOKEN_VAR: 'not-the-token-but-long-enough-0123456789' } });
    expectCleanExit(wrong, EXIT.noHealthyNode);
    expect(wrong.stderr).toMatch(/BAD_TOKEN_VAR/);
    const unset = await cli(['run', '--config', p.configPath, '--cloud', 'local'], { cwd: p.root, env: { BAD_TOKEN_VAR: '' } });
    expectCleanExit(unset, EXIT.noHealthyNode);
    expect(unset.stderr).toMatch(/BAD_TOKEN_VAR.*is not set/);
    expect(wrong.stderr + unset.stderr).not.toContain(agent.token!);
  });
});

describe('unreachable and lying nodes', () => {
  it('an unreachable agent among healthy folder nodes: the run completes on the others, exit 0, verify clean', async () => {
    const port = await freePort();
    const p = await badProject(defaultYaml({ nodes: ['  - { id: n1, path: ./nodes/n1 }', agentLine('gone', `http://127.0.0.1:${port}`, 'BAD_GONE_TOKEN'), '  - { id: n2, path: ./nodes/n2 }'] }));
    const md5 = await withData(p, { 'a.bin': 5 * MiB + 3, 'b.bin': 2 * MiB });
    const env = { BAD_GONE_TOKEN: 'x'.repeat(32) };
    const before = await tree(p.root);
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'local', '--json'], { cwd: p.root, env });
    expectCleanExit(r, EXIT.ok);
    const summary = JSON.parse(r.stdout) as Summary;
    expect(summary.status).toBe('complete');
    expect(summary.nodes.find((n) => n.id === 'gone')).toMatchObject({ chunks: 0, healthy: false });
    expectCleanExit(await cli(['verify', '--config', p.configPath], { cwd: p.root, env }), EXIT.ok);
    for (const [name, sum] of md5) {
      const out = join(p.root, 'nodes', 'rebuilt', name);
      expectCleanExit(await cli(['reassemble', '--config', p.configPath, '--file', name, '--out', out], { cwd: p.root, env }), EXIT.ok);
      expect(await md5OfFile(out)).toBe(sum);
    }
    expect(await writtenOutside(p.root, before, ALLOWED)).toEqual([]);
  });

  it('a lying agent (confirmed every chunk, its folder then wiped): verify exits 1 naming the chunks; reassemble refuses', async () => {
    const agents = await Promise.all([spawnAgent(), spawnAgent()]);
    const env = { BAD_L1_TOKEN: agents[0]!.token!, BAD_L2_TOKEN: agents[1]!.token! };
    const p = await badProject(defaultYaml({ nodes: [agentLine('honest', agents[0]!.url, 'BAD_L1_TOKEN'), agentLine('liar', agents[1]!.url, 'BAD_L2_TOKEN')] }));
    await withData(p, { 'a.bin': 6 * MiB, 'b.bin': 3 * MiB + 1 });
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'local', '--json'], { cwd: p.root, env });
    expectCleanExit(r, EXIT.ok);
    const summary = JSON.parse(r.stdout) as Summary;
    expect(summary.nodes.find((n) => n.id === 'liar')!.chunks).toBeGreaterThan(0);
    // The liar keeps running and keeps its index: it still claims every chunk, but the bytes are gone.
    for (const name of await agentChunkFiles(agents[1]!.dir)) if (name.endsWith('.chunk')) await rm(join(agents[1]!.dir, name));
    const verify = await cli(['verify', '--config', p.configPath, '--json'], { cwd: p.root, env });
    expectCleanExit(verify, EXIT.incomplete);
    const report = JSON.parse(verify.stdout) as { problems: { chunkId: string; nodeId: string; reason: string }[]; unrecoverable: string[] };
    const onLiar = summary.nodes.find((n) => n.id === 'liar')!.chunks;
    expect(report.problems).toHaveLength(onLiar);
    expect(report.problems.every((x) => x.nodeId === 'liar' && x.reason === 'missing')).toBe(true);
    expect(report.unrecoverable).toHaveLength(onLiar);
    const text = await cli(['verify', '--config', p.configPath], { cwd: p.root, env });
    expectCleanExit(text, EXIT.incomplete);
    expect(text.stdout).toMatch(/missing: a\.bin_chunk_\d+ on liar/);
    const lostFile = report.unrecoverable[0]!.replace(/_chunk_\d+$/, '');
    const rebuilt = await cli(['reassemble', '--config', p.configPath, '--file', lostFile, '--out', join(p.root, 'nodes', 'rebuilt.bin')], { cwd: p.root, env });
    expectCleanExit(rebuilt, EXIT.incomplete);
    expect(rebuilt.stderr).toMatch(/No good copy of .*_chunk_\d+.*liar/);
  });

  it('a lying folder node (bytes silently replaced) with replicas 2: verify exits 1, the file still reassembles from the good copy', async () => {
    const p = await badProject(defaultYaml({ extra: '  replicas: 2' }));
    const md5 = await withData(p, { 'r.bin': 4 * MiB + 5 });
    expectCleanExit(await cli(['run', '--config', p.configPath, '--cloud', 'local'], { cwd: p.root }), EXIT.ok);
    const liar = join(p.root, 'nodes', 'n2');
    const victims = (await readdir(liar, { recursive: true })).filter((n) => n.endsWith('.chunk')); // in its hex subfolders
    expect(victims.length).toBeGreaterThan(0);
    for (const name of victims) await writeFile(join(liar, name), Buffer.alloc(MiB, 0xee)); // wrong bytes (and length)
    const verify = await cli(['verify', '--config', p.configPath, '--json'], { cwd: p.root });
    expectCleanExit(verify, EXIT.incomplete);
    const report = JSON.parse(verify.stdout) as { problems: { nodeId: string; reason: string }[]; unrecoverable: string[] };
    expect(report.problems.length).toBe(victims.length);
    expect(report.problems.every((x) => x.nodeId === 'n2' && x.reason === 'checksum_mismatch')).toBe(true);
    expect(report.unrecoverable).toEqual([]);
    const out = join(p.root, 'nodes', 'rebuilt.bin');
    expectCleanExit(await cli(['reassemble', '--config', p.configPath, '--file', 'r.bin', '--out', out], { cwd: p.root }), EXIT.ok);
    expect(await md5OfFile(out)).toBe(md5.get('r.bin'));
    // Both copies of one chunk gone: reassemble says which chunk and exits 1 (it used to hang here).
    const gone = victims[0]!;
    for (const node of ['n1', 'n2']) await rm(join(p.root, 'nodes', node, gone), { force: true });
    const again = await cli(['reassemble', '--config', p.configPath, '--file', 'r.bin', '--out', out, '--force'], { cwd: p.root, timeoutMs: 30_000 });
    expectCleanExit(again, EXIT.incomplete);
    expect(again.stderr).toMatch(/No good copy of r\.bin_chunk_\d+: n\d: node n\d: chunk r\.bin_chunk_\d+ is not in/);
  });
});
