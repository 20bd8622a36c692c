// Folds engine events into a live progress line on a TTY (≤ 10 redraws a second), or plain lines otherwise.
// Counters only, and the chunks in flight: nothing is kept per finished chunk or per file, whatever the run's size.
import type { IngestEvent } from '../../shared/types.ts';

const REDRAW_MS = 100;
/** Back to the start of the line, and clear it: a live line is drawn over itself. */
const OVER_LINE = '\r\x1b[2K';

/** Whether a live line can be redrawn on `out`: a terminal that understands it. */
function redrawsOn(out: NodeJS.WriteStream): boolean {
  return Boolean(out.isTTY) && process.env.TERM !== 'dumb';
}
/**
 * Chunks in flight kept for the bar's part-way bytes: far above any max_concurrent_chunks, so only chunks whose
 * delivery ended without a final state (a re-send that failed) are ever let go, oldest first.
 */
export const MAX_TRACKED_IN_FLIGHT = 10_000;

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m${String(Math.round(seconds % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class ProgressView {
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  /** Totals listed so far: they grow until the listing is done. */
  private totalBytes = 0;
  private totalChunks = 0;
  private listing = true;
  private doneBytes = 0;
  private doneChunks = 0;
  /** Bytes of each chunk in flight, per node it goes to: with replicas the same source bytes reach several. */
  private readonly inFlight = new Map<string, Map<string, number>>();
  private readonly perNode = new Map<string, number>();
  private started = 0;
  private lastDraw = 0;
  private lastPlainPercent = -1;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(out: NodeJS.WriteStream = process.stderr) {
    this.out = out;
    this.tty = redrawsOn(out);
  }

  handle(event: IngestEvent): void {
    switch (event.type) {
      case 'run-started':
        this.started = performance.now();
        for (const node of event.nodes) this.perNode.set(node.id, 0);
        this.line(`Ingesting from ${event.source.kind} ${event.source.location}${event.source.endpoint ? ` via ${event.source.endpoint}` : ''} to ${event.nodes.filter((n) => n.state === 'healthy').length} healthy node(s); delivery starts while the listing goes on`);
        if (this.tty) this.timer = setInterval(() => this.draw(), REDRAW_MS).unref();
        break;
      case 'listed':
        this.totalBytes = event.bytes;
        this.totalChunks = event.chunks;
        this.listing = !event.done;
        if (event.done) this.line(`Listed ${event.files} file(s), ${formatBytes(event.bytes)} in ${event.chunks} chunk(s)`);
        break;
      case 'bytes': {
        let perNode = this.inFlight.get(event.chunkId);
        if (!perNode) {
          this.inFlight.set(event.chunkId, (perNode = new Map<string, number>()));
          for (const oldest of this.inFlight.keys()) {
            if (this.inFlight.size <= MAX_TRACKED_IN_FLIGHT) break;
            this.inFlight.delete(oldest);
          }
        }
        perNode.set(event.nodeId, (perNode.get(event.nodeId) ?? 0) + event.bytes);
        break;
      }
      case 'chunk':
        this.onChunk(event);
        break;
      case 'log':
        this.line(`${event.level}: ${event.message}`);
        break;
      case 'file':
        if (event.status === 'failed') this.line(`failed: ${event.key}: ${event.error ?? ''}`);
        break;
      case 'node':
        if (event.status.state !== 'healthy' && this.started) this.line(`node ${event.status.id} is ${event.status.state}${event.status.error ? `: ${event.status.error}` : ''}`);
        break;
      case 'run-finished':
        this.stop();
        break;
    }
    if (!this.tty) this.plainProgress();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty && this.started) {
      this.draw(true);
      this.out.write('\n');
    }
    this.inFlight.clear();
  }

  /** Chunks whose part-way bytes the bar counts now. */
  get chunksInFlight(): number {
    return this.inFlight.size;
  }

  private onChunk(event: Extract<IngestEvent, { type: 'chunk' }>): void {
    // A new attempt reads the chunk from its start: what an earlier one got part-way no longer counts.
    if (event.state === 'reading') this.inFlight.delete(event.id);
    if (event.state === 'retried' || event.state === 'moved' || event.state === 'failed') {
      this.inFlight.delete(event.id);
      if (event.state !== 'failed') this.line(`${event.state}: ${event.id}${event.nodeId ? ` → ${event.nodeId}` : ''}${event.error ? ` (${event.error})` : ''}`);
    }
    if (event.state === 'verified' || event.state === 'skipped') {
      this.inFlight.delete(event.id);
      this.doneBytes += event.size;
      this.doneChunks++;
      if (event.nodeId) this.perNode.set(event.nodeId, (this.perNode.get(event.nodeId) ?? 0) + 1);
    }
  }

  private progressBytes(): number {
    // Each source byte once: a chunk has been read as far as its furthest copy has got.
    let partial = 0;
    for (const perNode of this.inFlight.values()) partial += Math.max(0, ...perNode.values());
    return Math.min(this.totalBytes, this.doneBytes + partial);
  }

  private summary(): string {
    const bytes = this.progressBytes();
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? bytes / seconds : 0;
    const eta = rate > 0 && !this.listing ? (this.totalBytes - bytes) / rate : Infinity;
    const percent = this.totalBytes > 0 ? Math.floor((bytes / this.totalBytes) * 100) : this.totalChunks === this.doneChunks ? 100 : 0;
    const nodes = [...this.perNode].map(([id, n]) => `${id}:${n}`).join(' ');
    // While listing, the totals are what is listed so far: marked with a +, and no ETA.
    const more = this.listing ? '+' : '';
    return `${String(percent).padStart(3)}% ${formatBytes(bytes)}/${formatBytes(this.totalBytes)}${more} ${(rate / 1e6).toFixed(0)} MB/s ETA ${formatDuration(eta)} chunks ${this.doneChunks}/${this.totalChunks}${more} | ${nodes}`;
  }

  private draw(force = false): void {
    const now = performance.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const width = 24;
    const fraction = this.totalBytes > 0 ? this.progressBytes() / this.totalBytes : 1;
    const filled = Math.round(fraction * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const columns = this.out.columns ?? 120;
    this.out.write(`${OVER_LINE}${bar} ${this.summary()}`.slice(0, columns + 5));
  }

  private plainProgress(): void {
    // Without a terminal, every tenth of the way; only of final totals, so a line never goes back.
    if (this.listing || (this.totalBytes === 0 && this.totalChunks === 0)) return;
    const percent = this.totalBytes > 0 ? Math.floor((this.doneBytes / this.totalBytes) * 10) * 10 : 100;
    if (percent === this.lastPlainPercent) return;
    this.lastPlainPercent = percent;
    this.out.write(`${this.summary()}\n`);
  }

  private line(text: string): void {
    if (this.tty) this.out.write(`${OVER_LINE}${text}\n`);
    else this.out.write(`${text}\n`);
  }
}

/**
 * One live line for a command whose amount of work is known (verify, repair, reassemble): on a terminal it is
 * redrawn at most every REDRAW_MS (and whenever `force`d), and `end()` leaves it on its own line; elsewhere
 * (a pipe, a log, --json) nothing is written.
 */
export class TaskLine {
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  private lastDraw = 0;
  private drawn = false;

  constructor(out: NodeJS.WriteStream = process.stderr) {
    this.out = out;
    this.tty = redrawsOn(out);
  }

  update(text: string, force = false): void {
    if (!this.tty) return;
    const now = performance.now();
    if (!force && this.drawn && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    this.drawn = true;
    this.out.write(`${OVER_LINE}${text}`.slice(0, (this.out.columns || 80) + 5));
  }

  end(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

/** "writing 12.0 MiB of 1.0 GiB (1%)": a share of a known total in bytes. */
export function bytesOf(verb: string, bytes: number, total: number): string {
  const percent = total > 0 ? Math.floor((bytes / total) * 100) : 100;
  return `${verb} ${formatBytes(bytes)} of ${formatBytes(total)} (${percent}%)`;
}
