// Stream plumbing shared by the engine.
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';

/** Splits one stream into `n` with shared backpressure; a branch whose consumer fails is dropped, not waited for. */
export function tee(source: Readable, n: number): Readable[] {
  const branches = Array.from({ length: n }, () => new PassThrough({ highWaterMark: 1024 * 1024 }));
  let waiting = 0;
  source.on('data', (data: Buffer) => {
    for (const branch of branches) {
      if (branch.destroyed || branch.writableEnded) continue;
      if (!branch.write(data)) {
        waiting++;
        branch.once('drain', resume);
        branch.once('close', resume);
      }
    }
    if (waiting > 0) source.pause();
  });
  function resume(this: PassThrough): void {
    this.off('drain', resume);
    this.off('close', resume);
    if (--waiting === 0) source.resume();
  }
  source.on('end', () => branches.forEach((b) => b.end()));
  source.on('error', (error) => branches.forEach((b) => b.destroy(error)));
  return branches;
}
