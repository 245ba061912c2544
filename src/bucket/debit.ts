import type { BucketState, Limit } from '../core';
import { countedInWindow } from './fixed-window';
import { recordExpiryMs, refillPerMs, tokensAt } from './token-bucket';

/**
 * Takes `hits` that were admitted elsewhere (a local fallback while the shard was down) from a
 * bucket, whether or not they fit: a token bucket stops at 0 tokens, a fixed window counts them.
 * The result is never above what consuming normally would leave, so writing back can only make
 * the shared record stricter.
 */
export function debit(state: BucketState | undefined, limit: Limit, hits: number, nowMs: number): { next: BucketState; expireAtMs: number } {
  if (limit.algorithm === 'fixed_window') return countedInWindow(state, limit, hits, nowMs);
  const tokens = Math.max(0, tokensAt(state, limit, nowMs) - hits);
  const updatedAtMs = Math.max(nowMs, state?.updatedAtMs ?? nowMs);
  const rate = refillPerMs(limit);
  const refillMs = rate > 0 ? Math.ceil((limit.capacity - tokens) / rate) : 0;
  return { next: { tokens, updatedAtMs }, expireAtMs: recordExpiryMs(updatedAtMs, updatedAtMs + refillMs) };
}
