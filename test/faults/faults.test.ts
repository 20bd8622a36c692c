// The fault suite inside `npm test`, with fewer trials than `npm run faults`: every scenario must end with
// nothing lost, nothing duplicated, nothing under-replicated, verify clean and every file reassembled byte for byte.
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAgents } from '../helpers/agents.ts';
import { stopNatsServers } from '../helpers/nats.ts';
import { removeTemps } from './harness.ts';
import type { ScenarioRow } from './harness.ts';
import { agentKilledForReal, hashThreadKilled, namesThroughAgents } from './edge-scenarios.ts';
import { pullWorkerKilled } from './pull-scenarios.ts';
import { corruptInTransit, diskFills, flakySource, killAndResume, nodeComesBack, nodeKilled, slowNode } from './scenarios.ts';

const SEED = 'npm-test-1';

afterAll(async () => {
  await stopNatsServers();
  await cleanupAgents();
  await removeTemps();
});

function expectClean(row: ScenarioRow, trials: number): void {
  expect(row.failures).toEqual([]);
  expect(row.trials).toBe(trials);
  expect(row.chunks).toBeGreaterThan(0);
  expect(row.lost).toBe(0);
  expect(row.duplicates).toBe(0);
  expect(row.underReplicated).toBe(0);
}

describe('fault suite (few trials; `npm run faults` runs the full set)', () => {
  it('1. the engine CLI SIGKILLed at seeded points, then resumed: 3 trials', async () => {
    expectClean(await killAndResume({ trials: 3, seed: SEED }), 3);
  });

  it('2. a flaky source: s3rver behind a proxy answering 503 / dropping 20 % of requests', async () => {
    const row = await flakySource({ trials: 1, seed: SEED });
    expectClean(row, 1);
    expect(row.retries).toBeGreaterThan(0);
  });

  it('3. bytes corrupted in transit to agents are refused by checksum and redelivered', async () => {
    const row = await corruptInTransit({ trials: 1, seed: SEED });
    expectClean(row, 1);
    expect(row.retries).toBeGreaterThan(0);
  });

  it('4a. an agent SIGKILLed mid-ingest: its chunks move to the others', async () => {
    const row = await nodeKilled({ trials: 1, seed: SEED });
    expectClean(row, 1);
  });

  it('4b. an agent that comes back gets work again; the run is cancelled and resumed', async () => {
    expectClean(await nodeComesBack({ trials: 1, seed: SEED }), 1);
  });

  it('4c. an agent whose disk fills (--max-bytes) is marked full and its chunks go elsewhere', async () => {
    const row = await diskFills({ trials: 1, seed: SEED });
    expectClean(row, 1);
    expect(row.replacements).toBeGreaterThan(0);
  });

  it('5. a slow node past its timeout loses its chunks to the others (hung, and answering late)', async () => {
    const row = await slowNode({ trials: 2, seed: SEED });
    expectClean(row, 2);
    expect(row.replacements).toBeGreaterThan(0);
  });

  it('6a. an agent process SIGKILLed for real, replicas 1: complete, verify clean right after with the agent still dead', async () => {
    expectClean(await agentKilledForReal(1)({ trials: 1, seed: SEED }), 1);
  });

  it('6b. an agent process SIGKILLed for real, replicas 2: every chunk keeps 2 good copies on live nodes', async () => {
    expectClean(await agentKilledForReal(2)({ trials: 1, seed: SEED }), 1);
  });

  it('7. a hashing thread killed mid-run fails only the work it held, which is done again', async () => {
    expectClean(await hashThreadKilled({ trials: 1, seed: SEED }), 1);
  });

  it('8. a seeded fuzz of source names through agents: every file reassembled byte for byte after every agent restarts', async () => {
    expectClean(await namesThroughAgents({ trials: 1, seed: SEED }), 1);
  });

  // Pull mode's rows (nats-server restarted, a slow worker) run in `npm run faults`; this one stands for them here.
  it('9a. pull mode: a worker (agent with --nats) SIGKILLed mid-run: complete, verify clean right after with the worker still dead', async () => {
    const row = await pullWorkerKilled({ trials: 1, seed: SEED });
    expectClean(row, 1);
    expect(row.replacements).toBeGreaterThan(0);
  });
});
