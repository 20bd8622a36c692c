// The node registry's live health against real agent processes: interval probes, suspect → unhealthy when an
// agent dies, healthy again when it comes back, the cool-down after failed deliveries, full agents, and events.
import { afterAll, describe, expect, it } from 'vitest';
import { AgentNode } from '../../electron/engine/nodes/agent-node.ts';
import { NodeError } from '../../electron/engine/nodes/node.ts';
import { NodeRegistry } from '../../electron/engine/nodes/registry.ts';
import type { NodeHealthState, NodeStatus } from '../../shared/types.ts';
import { cleanupAgents, spawnAgent } from '../helpers/agents.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { randomChunk, waitFor } from './helpers.ts';

afterAll(cleanupAgents);

function agentNode(id: string, agent: AgentProcess): AgentNode {
  return new AgentNode({ id, url: agent.url, tokenEnv: 'T', env: { T: agent.token }, probeTimeoutMs: 500 });
}

function track(registry: NodeRegistry): { transitions: Map<string, string[]>; changes: NodeStatus[] } {
  const transitions = new Map<string, string[]>();
  const changes: NodeStatus[] = [];
  registry.on('state', (status: NodeStatus, previous: NodeHealthState) => {
    const list = transitions.get(status.id) ?? [];
    list.push(`${previous}->${status.state}`);
    transitions.set(status.id, list);
  });
  registry.on('change', (s) => changes.push(s));
  return { transitions, changes };
}

describe('node registry', () => {
  it('probes on an interval: a killed agent goes suspect then unhealthy, and is usable again when it comes back', async () => {
    const [a1, a2] = await Promise.all([spawnAgent(), spawnAgent()]);
    const registry = new NodeRegistry([agentNode('a1', a1!), agentNode('a2', a2!)], { probeIntervalMs: 200, probeTimeoutMs: 500, cooldownMs: 500 });
    const { transitions } = track(registry);
    const first = await registry.probeAll();
    expect(first.map((s) => s.state)).toEqual(['healthy', 'healthy']);
    expect(first[0]!.freeBytes).toBeGreaterThan(0);
    expect(first[0]!.latencyMs).toBeGreaterThanOrEqual(0);
    expect(registry.usable().map((n) => n.id)).toEqual(['a1', 'a2']);

    await a2!.kill('SIGKILL');
    await waitFor('a2 to be unhealthy', () => registry.statusOf('a2')?.state === 'unhealthy' || undefined);
    expect(transitions.get('a2')).toEqual(['suspect->healthy', 'healthy->suspect', 'suspect->unhealthy']);
    expect(registry.statusOf('a2')?.error).toMatch(/a2/);
    expect(registry.usable().map((n) => n.id)).toEqual(['a1']);

    const back = await spawnAgent({ dir: a2!.dir, port: a2!.port, token: a2!.token! });
    await waitFor('a2 to be healthy again', () => registry.statusOf('a2')?.state === 'healthy' || undefined);
    expect(transitions.get('a2')?.at(-1)).toBe('unhealthy->healthy');
    expect(registry.usable().map((n) => n.id)).toEqual(['a1', 'a2']);
    expect(transitions.get('a1')).toEqual(['suspect->healthy']);
    await registry.close();
    await back.kill('SIGTERM');
  });

  it('after a failed delivery a node that still answers waits out a cool-down before new work', async () => {
    const agent = await spawnAgent();
    const registry = new NodeRegistry([agentNode('a1', agent)], { probeIntervalMs: 100, probeTimeoutMs: 500, cooldownMs: 1500 });
    await registry.probeAll();
    registry.markFailed('a1', new NodeError('a1', 'timeout', 'node a1: no progress for 30000 ms'));
    expect(registry.statusOf('a1')?.state).toBe('unhealthy');
    const suspect = await waitFor('a probe during the cool-down', () => (registry.statusOf('a1')?.state === 'suspect' ? registry.statusOf('a1') : undefined));
    expect(suspect.error).toMatch(/answering again; new work from \d\d:\d\d:\d\d UTC \(recent deliveries failed: node a1: no progress/);
    expect(registry.usable()).toEqual([]);
    await waitFor('the cool-down to end', () => registry.statusOf('a1')?.state === 'healthy' || undefined);
    expect(registry.usable().map((n) => n.id)).toEqual(['a1']);
    await registry.close();
    await agent.kill('SIGTERM');
  });

  it('an agent out of quota is full; placement weight is the free space it reports', async () => {
    const [roomy, tight] = await Promise.all([spawnAgent(), spawnAgent({ maxBytes: 1024 * 1024 })]);
    const tightNode = agentNode('tight', tight!);
    const c = randomChunk(1024 * 1024);
    await tightNode.write({ id: 'fill_chunk_0', file: 'fill', index: 0, offset: 0, size: 1024 * 1024 }, c.data, c.checksum);
    const registry = new NodeRegistry([agentNode('roomy', roomy!), tightNode], { probeIntervalMs: 0 });
    const statuses = await registry.probeAll();
    expect(statuses.map((s) => s.state)).toEqual(['healthy', 'full']);
    expect(statuses[1]).toMatchObject({ freeBytes: 0, chunkCount: 1, bytesHeld: 1024 * 1024 });
    expect(registry.usable().map((n) => n.id)).toEqual(['roomy']);
    expect(registry.weight('roomy')).toBe(statuses[0]!.freeBytes);
    expect(registry.weight('tight')).toBeUndefined();
    await registry.close();
  });

  it('emits changes, not every probe', async () => {
    const agent = await spawnAgent();
    const registry = new NodeRegistry([agentNode('a1', agent)], { probeIntervalMs: 50, probeTimeoutMs: 500 });
    const { changes } = track(registry);
    await registry.probeAll();
    const probes = 20;
    let seen = 0;
    const node = registry.get('a1')!;
    const original = node.probe.bind(node);
    node.probe = async (signal?: AbortSignal) => {
      seen++;
      return original(signal);
    };
    await waitFor(`${probes} probes`, () => seen >= probes || undefined);
    await registry.close();
    expect(changes.length).toBeLessThan(probes / 2);
    // The first probe's result (healthy) is an event; steady probes after it are not.
    expect(changes[0]).toMatchObject({ id: 'a1', state: 'healthy' });
    await agent.kill('SIGTERM');
  });
});
