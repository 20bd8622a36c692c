// Node's process warnings, minus one known false alarm. Every GCS read makes its own stack of SDK streams, and one
// of them carries 11 listeners, one over Node's default limit of 10: Node then prints a "possible EventEmitter
// memory leak" warning for each read, and a run reads hundreds of chunks. It is not a leak (each stream is dropped
// when its read ends). The CLI drops listener warnings about streams; every other warning is printed as Node
// prints it. The test suite runs the engine without this filter, so a real leak in our own streams still shows.
import { Stream } from 'node:stream';

export function isStreamListenerWarning(warning: Error): boolean {
  return warning.name === 'MaxListenersExceededWarning' && (warning as Error & { emitter?: unknown }).emitter instanceof Stream;
}

/** Replaces Node's printer of process warnings (absent under --no-warnings: then there is nothing to do). */
export function quietSdkStreamWarnings(): void {
  if (process.listenerCount('warning') === 0) return;
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (isStreamListenerWarning(warning)) return;
    const text = process.traceProcessWarnings && warning.stack ? warning.stack : `${warning.name}: ${warning.message}`;
    process.stderr.write(`(node:${process.pid}) ${text}\n`);
  });
}
