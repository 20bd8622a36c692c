// Pull mode's workers as the Nodes screen shows them: the host listens to their heartbeats on NATS
// (`cloud-ingest.heartbeat.*`, core NATS, one a second per worker) from the first time the screen asks, whether or
// not a run is going, and answers with each worker's last heartbeat and how long ago it came. Every heartbeat is
// checked by the pull-mode contract's validator; a malformed one, or one past the cap on workers, fails only
// itself. The NATS URL is resolved as the run resolves it: cluster.nats_url, else NATS_URL.
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { HEARTBEAT_FILTER } from '../../shared/cluster/contract.ts';
import type { WorkerHeartbeat } from '../../shared/cluster/contract.ts';
import { decode, workerHeartbeat } from '../../shared/cluster/validators.ts';
import { CLUSTER_DEFAULTS } from '../../shared/config/types.ts';
import type { PullWorkersView, PullWorkerView } from '../../shared/ipc/contract.ts';
import { effectiveNodes } from '../engine/index.ts';
import type { LoadedConfig } from '../engine/index.ts';

/** Workers remembered at once; heartbeats from more ids than this (a misconfigured fleet, a flood) are dropped. */
const MAX_WORKERS = 1000;
/** A worker the config does not name is forgotten after this long without a heartbeat. */
const FORGET_UNCONFIGURED_MS = 10 * 60_000;
/** How long a first connection may take before the answer says the server does not answer. */
const CONNECT_TIMEOUT_MS = 2000;

interface Heard {
  beat: WorkerHeartbeat;
  receivedAt: number;
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/,]*@/g, '//');
}

export class WorkerWatch {
  private url: string | undefined;
  private nc: NatsConnection | undefined;
  private connecting: Promise<void> | undefined;
  private connected = false;
  private lastError: string | undefined;
  private readonly heard = new Map<string, Heard>();
  /** Heartbeats refused by the validator or past MAX_WORKERS. */
  refused = 0;

  async view(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): Promise<PullWorkersView> {
    const cluster = { ...CLUSTER_DEFAULTS, ...loaded.config.cluster };
    const timeoutMs = cluster.worker_timeout_seconds * 1000;
    if (loaded.config.ingestion.mode !== 'pull') {
      await this.close();
      return { mode: 'push', connected: false, timeoutMs, workers: [] };
    }
    const url = cluster.nats_url ?? env.NATS_URL;
    if (!url) {
      await this.close();
      return { mode: 'pull', connected: false, timeoutMs, workers: [], error: 'No NATS server to listen to: neither cluster.nats_url in the config nor NATS_URL is set. Fix: set cluster.nats_url: "nats://host:4222".' };
    }
    if (url !== this.url) await this.listen(url);
    if (!this.nc && !this.connecting) this.connecting = this.tryConnect(url);
    await this.connecting;
    return {
      mode: 'pull',
      natsUrl: redact(url),
      connected: this.connected,
      timeoutMs,
      workers: this.workerViews(effectiveNodes(loaded.config).map((n) => n.id), timeoutMs),
      ...(this.connected || !this.lastError ? {} : { error: this.lastError }),
    };
  }

  private workerViews(configured: string[], timeoutMs: number): PullWorkerView[] {
    const now = Date.now();
    for (const [id, h] of this.heard) if (!configured.includes(id) && now - h.receivedAt > FORGET_UNCONFIGURED_MS) this.heard.delete(id);
    const view = (nodeId: string, isConfigured: boolean): PullWorkerView => {
      const h = this.heard.get(nodeId);
      if (!h) return { nodeId, configured: isConfigured, alive: false };
      const { v: _v, nodeId: _id, ...heartbeat } = h.beat;
      const silentMs = now - h.receivedAt;
      return { nodeId, configured: isConfigured, alive: silentMs <= timeoutMs, silentMs, heartbeat };
    };
    const others = [...this.heard.keys()].filter((id) => !configured.includes(id)).sort();
    return [...configured.map((id) => view(id, true)), ...others.map((id) => view(id, false))];
  }

  /** Starts over on another URL: what was heard on the old one says nothing about the new one's workers. */
  private async listen(url: string): Promise<void> {
    await this.close();
    this.url = url;
  }

  private async tryConnect(url: string): Promise<void> {
    try {
      const nc = await connect({
        servers: url.split(',').map((u) => u.trim()),
        name: 'cloud-ingest app (worker heartbeats)',
        timeout: CONNECT_TIMEOUT_MS,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
      });
      nc.subscribe(HEARTBEAT_FILTER, { callback: (error, msg) => { if (!error) this.onHeartbeat(msg.data); } });
      // Connected means listening: the server has the subscription (a round trip) before anyone is told so, or
      // heartbeats sent right after would be dropped.
      await nc.flush().catch(async (error: unknown) => {
        await nc.close().catch(() => undefined);
        throw error;
      });
      if (this.url !== url) {
        await nc.close();
        return;
      }
      this.nc = nc;
      this.connected = true;
      this.lastError = undefined;
      void this.watchStatus(nc);
      void nc.closed().then(() => {
        if (this.nc === nc) {
          this.nc = undefined;
          this.connected = false;
        }
      });
    } catch (error) {
      this.lastError = `The NATS server at ${redact(url)} does not answer (${error instanceof Error ? error.message : String(error)}). Fix: start it (nats-server -js), or correct cluster.nats_url.`;
    } finally {
      this.connecting = undefined;
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (this.nc !== nc) return;
      if (status.type === 'disconnect') {
        this.connected = false;
        this.lastError = `Lost the connection to the NATS server at ${redact(this.url ?? '')}; reconnecting.`;
      } else if (status.type === 'reconnect') {
        this.connected = true;
        this.lastError = undefined;
      }
    }
  }

  private onHeartbeat(data: Uint8Array): void {
    let beat: WorkerHeartbeat;
    try {
      beat = decode(workerHeartbeat, data, 'heartbeat');
    } catch {
      this.refused++;
      return;
    }
    if (!this.heard.has(beat.nodeId) && this.heard.size >= MAX_WORKERS) {
      this.refused++;
      return;
    }
    this.heard.set(beat.nodeId, { beat, receivedAt: Date.now() });
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    this.url = undefined;
    this.connected = false;
    this.lastError = undefined;
    this.heard.clear();
    await nc?.close().catch(() => undefined);
  }
}
