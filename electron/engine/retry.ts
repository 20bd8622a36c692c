// Exponential backoff with jitter, written once and layered around sources and nodes alike.

export interface RetryPolicy {
  /** Retries after the first try. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs?: number;
}

export function backoffDelayMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const exponential = policy.baseDelayMs * 2 ** (retry - 1);
  const capped = Math.min(exponential, policy.maxDelayMs ?? 60_000);
  // "Equal jitter": at least half the delay, so retries never stampede and never collapse to zero.
  return Math.round(capped / 2 + (random() * capped) / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export async function withRetries<T>(
  operation: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  options: { isRetryable: (error: unknown) => boolean; onRetry?: (error: unknown, retry: number, delayMs: number) => void; signal?: AbortSignal },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt > policy.retries || !options.isRetryable(error) || options.signal?.aborted) throw error;
      const delay = backoffDelayMs(policy, attempt);
      options.onRetry?.(error, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}

export function retryPolicyFromConfig(ingestion: { retry_attempts: number; retry_delay_seconds: number }): RetryPolicy {
  return { retries: ingestion.retry_attempts, baseDelayMs: ingestion.retry_delay_seconds * 1000 };
}
