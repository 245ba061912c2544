import type { RateLimitResponse } from '../../src/generated/envoy/service/ratelimit/v3/rls';

export interface LoadResult {
  readonly sent: number;
  readonly admitted: number;
  readonly denied: number;
  readonly errors: number;
  /** From the first send to the last answer. */
  readonly elapsedMs: number;
  readonly firstError?: string;
}

/**
 * Sends `total` calls with at most `concurrency` in flight and stops by itself. Every call goes
 * to loopback servers through the given function; the index picks the instance and the key.
 */
export async function runLoad(total: number, concurrency: number, call: (index: number) => Promise<RateLimitResponse>): Promise<LoadResult> {
  let next = 0;
  let admitted = 0;
  let denied = 0;
  let errors = 0;
  let firstError: string | undefined;
  const startedMs = Date.now();
  const worker = async (): Promise<void> => {
    while (next < total) {
      const index = next++;
      try {
        const response = await call(index);
        if (response.overall_code === 1) admitted++;
        else denied++;
      } catch (error) {
        errors++;
        firstError ??= String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { sent: total, admitted, denied, errors, elapsedMs: Date.now() - startedMs, ...(firstError === undefined ? {} : { firstError }) };
}
