// A run's listing while delivery reads the plan it writes (see IngestRun.deliverAll): its totals so far, reported
// now and then; whether it has ended, and how; and a wake-up for delivery lanes waiting for the plan to grow.

/** At most this often a `listed` event while the listing goes on (its last one is always said). */
const LISTED_EVERY_MS = 250;

export interface ListedTotals {
  files: number;
  chunks: number;
  bytes: number;
}

export class ListingProgress {
  /** What has been listed so far; the listing adds to it. */
  readonly totals: ListedTotals = { files: 0, chunks: 0, bytes: 0 };
  private isEnded = false;
  private error: Error | undefined;
  private readonly report: (totals: ListedTotals, done: boolean) => void;
  private wake: () => void = () => undefined;
  private readonly untilEndWaiters: (() => void)[] = [];
  private lastReport = -Infinity;

  constructor(report: (totals: ListedTotals, done: boolean) => void) {
    this.report = report;
  }

  /** The listing has ended: all of it is planned, or it stopped (`failure`: why, if it failed). */
  get ended(): boolean {
    return this.isEnded;
  }

  get failure(): Error | undefined {
    return this.error;
  }

  /** Lanes waiting for more of the plan are woken with `wake`. */
  onGrew(wake: () => void): void {
    this.wake = wake;
  }

  /** More of the plan is written. */
  grew(): void {
    this.wake();
  }

  /** The totals (`totals`) after a page, or, with `done`, the final ones; the plan has grown. */
  listed(done: boolean): void {
    const now = performance.now();
    if (done || now - this.lastReport >= LISTED_EVERY_MS) {
      this.lastReport = now;
      this.report({ ...this.totals }, done);
    }
    this.grew();
  }

  end(failure?: Error): void {
    this.error ??= failure;
    this.isEnded = true;
    this.grew();
    for (const resolve of this.untilEndWaiters.splice(0)) resolve();
  }

  untilEnded(): Promise<void> {
    return this.isEnded ? Promise.resolve() : new Promise((resolve) => this.untilEndWaiters.push(resolve));
  }
}
