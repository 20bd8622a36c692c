// The nodes of a run and their live health. Ingest asks it which nodes are usable and tells it when a delivery
// failed; between those, it probes every node on an interval (with a timeout) and keeps one state per node:
//   healthy    answers probes; new work may go there
//   suspect    a probe failed after it was healthy (one more failure makes it unhealthy), or it answers again
//              after failed deliveries and is waiting out a cool-down before new work goes there
//   unhealthy  unreachable, refusing the token, or failing deliveries
//   full       reports no room, or refused a chunk for lack of space
// A node that comes back (probes succeed again, cool-down over) becomes healthy and receives new work.
import { EventEmitter } from 'node:events';
import type { NodeHealthState, NodeStatus } from '../../../shared/types.ts';
import type { NodeProbe, NodeTarget } from './node.ts';
import { NodeError } from './node.ts';
import { linkedAbort } from '../linked-abort.ts';

export const DEFAULT_PROBE_TIMEOUT_MS = 3000;
export const DEFAULT_PROBE_INTERVAL_MS = 2000;
export const DEFAULT_COOLDOWN_MS = 5000;
const MAX_COOLDOWN_MS = 60_000;
/** Consecutive failed probes that turn a suspect node unhealthy. */
const PROBE_FAILURES_TO_UNHEALTHY = 2;

export interface RegistryOptions {
  probeTimeoutMs?: number;
  /** Interval probing starts with the first probeAll(); 0 turns it off. */
  probeIntervalMs?: number;
  /** After a failed delivery, how long a node that answers again waits before new work; doubles on each failure. */
  cooldownMs?: number;
}

export interface RegistryEvents {
  /** The node's state, error, or (noticeably) its free space or latency changed. */
  change: [NodeStatus];
  /** The node's state changed; the second argument is the previous state. */
  state: [NodeStatus, NodeHealthState];
}

interface Health {
  /** Consecutive failed probes. */
  probeFailures: number;
  deliveryFailures: number;
  /** No new work before this time (ms since epoch), even when probes succeed. */
  coolUntil: number;
  probing: Promise<NodeStatus> | undefined;
}

export class NodeRegistry extends EventEmitter<RegistryEvents> {
  readonly nodes: readonly NodeTarget[];
  private readonly status = new Map<string, NodeStatus>();
  private readonly health = new Map<string, Health>();
  private readonly probeTimeoutMs: number;
  private readonly probeIntervalMs: number;
  private readonly cooldownMs: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(nodes: NodeTarget[], options: RegistryOptions = {}) {
    super();
    this.nodes = nodes;
    this.probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.probeIntervalMs = options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.cooldownMs = options.cooldownMs ?? DEFAULT_COOLDOWN_MS;
    for (const node of nodes) {
      this.health.set(node.id, { probeFailures: 0, deliveryFailures: 0, coolUntil: 0, probing: undefined });
      this.set(node, { state: 'suspect', error: 'not probed yet' });
    }
  }

  get(id: string): NodeTarget | undefined {
    return this.nodes.find((n) => n.id === id);
  }

  statuses(): NodeStatus[] {
    return this.nodes.map((n) => this.status.get(n.id)!);
  }

  statusOf(id: string): NodeStatus | undefined {
    return this.status.get(id);
  }

  /**
   * Nodes new work may go to, in config order: the healthy ones. When none is healthy, the nodes that are only
   * suspect because of a missed probe (not because deliveries failed) are used rather than stopping the run.
   */
  usable(): NodeTarget[] {
    const healthy = this.nodes.filter((n) => this.status.get(n.id)?.state === 'healthy');
    if (healthy.length > 0) return healthy;
    const now = Date.now();
    return this.nodes.filter((n) => {
      const h = this.health.get(n.id)!;
      return this.status.get(n.id)?.state === 'suspect' && h.probeFailures > 0 && h.coolUntil <= now;
    });
  }

  /** Placement weight: the free space the node last reported, if it reports any. */
  weight(id: string): number | undefined {
    const free = this.status.get(id)?.freeBytes;
    return free !== undefined && free > 0 ? free : undefined;
  }

  /** Probes every node once, then keeps probing them on the interval until close(). */
  async probeAll(signal?: AbortSignal): Promise<NodeStatus[]> {
    await Promise.all(this.nodes.map((node) => this.probe(node, signal)));
    this.startProbing();
    return this.statuses();
  }

  startProbing(): void {
    if (this.timer || this.closed || this.probeIntervalMs <= 0) return;
    this.timer = setInterval(() => {
      for (const node of this.nodes) void this.probe(node);
    }, this.probeIntervalMs);
    this.timer.unref();
  }

  stopProbing(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Probes every node now, and once more those that missed only this probe, so the answer is about the nodes as
   * they are at this moment (a run's end), not as the interval last saw them.
   */
  async recheck(signal?: AbortSignal): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.probe(node, signal)));
    const missedOnce = this.nodes.filter((n) => this.health.get(n.id)!.probeFailures === 1);
    await Promise.all(missedOnce.map((node) => this.probe(node, signal)));
  }

  /**
   * Whether the node's copies count as reachable: its last probe was answered (it may be full, or cooling down
   * after failed deliveries, and still serve what it holds).
   */
  alive(id: string): boolean {
    const health = this.health.get(id);
    const state = this.status.get(id)?.state;
    return health !== undefined && health.probeFailures === 0 && state !== undefined && state !== 'unhealthy' && this.status.get(id)?.error !== 'not probed yet';
  }

  /** Probes one node (at most one probe per node at a time) and updates its state. */
  probe(node: NodeTarget, signal?: AbortSignal): Promise<NodeStatus> {
    const health = this.health.get(node.id)!;
    health.probing ??= this.probeOnce(node, signal).finally(() => (health.probing = undefined));
    return health.probing;
  }

  /** A delivery to this node failed after its retries: no new work goes there until it answers probes again and a cool-down has passed. */
  markFailed(id: string, error: unknown): void {
    const node = this.get(id);
    if (!node) return;
    const health = this.health.get(id)!;
    const current = this.status.get(id)!;
    // Several chunks in flight fail together when a node dies: count that as one failure.
    if (current.state === 'healthy' || current.state === 'suspect') health.deliveryFailures++;
    const cooldown = Math.min(MAX_COOLDOWN_MS, this.cooldownMs * 2 ** Math.max(0, health.deliveryFailures - 1));
    health.coolUntil = Math.max(health.coolUntil, Date.now() + cooldown);
    const state: NodeHealthState = error instanceof NodeError && error.code === 'full' ? 'full' : 'unhealthy';
    this.set(node, { ...this.measurements(current), state, error: error instanceof Error ? error.message : String(error) });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopProbing();
    this.removeAllListeners();
    await Promise.all(this.nodes.map((n) => n.close()));
  }

  private async probeOnce(node: NodeTarget, signal?: AbortSignal): Promise<NodeStatus> {
    const stop = linkedAbort(signal);
    const timeout = setTimeout(() => stop.controller.abort(), this.probeTimeoutMs);
    let probe: NodeProbe;
    try {
      probe = await Promise.race([
        node.probe(stop.signal),
        new Promise<never>((_, reject) => stop.signal.addEventListener('abort', () => reject(new Error(`no answer within ${this.probeTimeoutMs} ms`)), { once: true })),
      ]);
    } catch (error) {
      probe = { ok: false, latencyMs: this.probeTimeoutMs, error: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timeout);
      stop.release();
    }
    if (this.closed) return this.status.get(node.id)!;
    return this.apply(node, probe);
  }

  private apply(node: NodeTarget, probe: NodeProbe): NodeStatus {
    const health = this.health.get(node.id)!;
    const previous = this.status.get(node.id)!;
    const measured = {
      latencyMs: probe.latencyMs,
      ...(probe.freeBytes !== undefined ? { freeBytes: probe.freeBytes } : {}),
      ...(probe.chunkCount !== undefined ? { chunkCount: probe.chunkCount } : {}),
      ...(probe.bytesHeld !== undefined ? { bytesHeld: probe.bytesHeld } : {}),
    };
    if (!probe.ok) {
      health.probeFailures++;
      // A healthy node that misses one probe is suspect; missing the next (or never having answered) is unhealthy.
      const state: NodeHealthState = previous.state === 'healthy' && health.probeFailures < PROBE_FAILURES_TO_UNHEALTHY ? 'suspect' : 'unhealthy';
      return this.set(node, { ...this.measurements(previous), state, error: probe.error ?? 'the probe failed' });
    }
    health.probeFailures = 0;
    if (probe.full) return this.set(node, { ...measured, state: 'full', error: probe.error ?? 'the node reports no free space' });
    const waitMs = health.coolUntil - Date.now();
    if (waitMs > 0) {
      // The text stays the same for the whole cool-down, so it is one event, not one per probe.
      const until = new Date(health.coolUntil).toISOString().slice(11, 19);
      const why = previous.state === 'suspect' ? (previous.error ?? '') : `recent deliveries failed${previous.error ? `: ${previous.error}` : ''}`;
      return this.set(node, { ...measured, state: 'suspect', error: previous.state === 'suspect' ? why : `answering again; new work from ${until} UTC (${why})`.slice(0, 500) });
    }
    return this.set(node, { ...measured, state: 'healthy' });
  }

  private measurements(s: NodeStatus): Partial<NodeStatus> {
    return {
      ...(s.latencyMs !== undefined ? { latencyMs: s.latencyMs } : {}),
      ...(s.freeBytes !== undefined ? { freeBytes: s.freeBytes } : {}),
      ...(s.chunkCount !== undefined ? { chunkCount: s.chunkCount } : {}),
      ...(s.bytesHeld !== undefined ? { bytesHeld: s.bytesHeld } : {}),
    };
  }

  private set(node: NodeTarget, fields: Omit<NodeStatus, 'id' | 'kind' | 'location' | 'checkedAt'>): NodeStatus {
    const status: NodeStatus = { id: node.id, kind: node.kind, location: node.location, checkedAt: new Date().toISOString(), ...fields };
    const previous = this.status.get(node.id);
    this.status.set(node.id, status);
    if (!previous || noticeable(previous, status)) this.emit('change', status);
    if (previous && previous.state !== status.state) this.emit('state', status, previous.state);
    return status;
  }
}

/** Worth an event: another state or error, free space moved by ≥ 1 %, latency by ≥ 50 % and 20 ms, chunk count changed. */
function noticeable(a: NodeStatus, b: NodeStatus): boolean {
  if (a.state !== b.state || a.error !== b.error) return true;
  if (a.chunkCount !== b.chunkCount) return true;
  if ((a.freeBytes === undefined) !== (b.freeBytes === undefined)) return true;
  if (a.freeBytes !== undefined && b.freeBytes !== undefined && Math.abs(a.freeBytes - b.freeBytes) >= 0.01 * Math.max(a.freeBytes, 1)) return true;
  if (a.latencyMs !== undefined && b.latencyMs !== undefined && Math.abs(a.latencyMs - b.latencyMs) >= Math.max(20, 0.5 * a.latencyMs)) return true;
  return false;
}
