/** Resolves once `check()` holds, polling every `everyMs`; rejects naming `what` after `ms`. */
export function until(check: () => boolean, what: string, ms = 60_000, everyMs = 20): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      if (check()) resolve();
      else if (Date.now() - started > ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, everyMs);
    };
    tick();
  });
}
