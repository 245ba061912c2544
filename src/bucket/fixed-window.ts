import { UNIT_SECONDS, type BucketState, type Limit } from '../core';
import type { LimitDecision } from './limit-decision';

/*
 * NOTE: reproduces envoyproxy/ratelimit's fixed window for drop-in migration.
 * - Windows are aligned to the unix epoch (a minute starts at :00, a day at 00:00 UTC, a month is
 *   a 30-day block from the epoch).
 * - Every hit is counted, admitted or not (the reference INCRBYs before comparing), so a denied
 *   request with a large hits_addend uses up the rest of the window.
 * - Over limit iff the count after adding the hits exceeds requests_per_unit; hits = 0 checks
 *   the current count without adding to it.
 * - The reset is reported in whole seconds, as `window - now % window` with now in unix seconds.
 */

export function windowStartMs(limit: Limit, nowMs: number): number {
  const windowMs = UNIT_SECONDS[limit.unit] * 1000;
  return Math.floor(nowMs / windowMs) * windowMs;
}

/** The window's record after `hits` more are counted in the window that holds `nowMs`. */
export function countedInWindow(state: BucketState | undefined, limit: Limit, hits: number, nowMs: number): { next: BucketState; expireAtMs: number } {
  const startMs = windowStartMs(limit, nowMs);
  const counted = state !== undefined && state.updatedAtMs === startMs ? limit.requestsPerUnit - state.tokens : 0;
  return { next: { tokens: limit.requestsPerUnit - (counted + hits), updatedAtMs: startMs }, expireAtMs: startMs + UNIT_SECONDS[limit.unit] * 1000 };
}

export function consumeFixedWindow(
  state: BucketState | undefined,
  limit: Limit,
  hits: number,
  nowMs: number,
): LimitDecision {
  const { next, expireAtMs } = countedInWindow(state, limit, hits, nowMs);
  // next.tokens is requests_per_unit minus the count after these hits.
  return {
    allowed: next.tokens >= 0,
    remaining: Math.max(0, next.tokens),
    resetAfterMs: (UNIT_SECONDS[limit.unit] - (Math.floor(nowMs / 1000) % UNIT_SECONDS[limit.unit])) * 1000,
    next: hits === 0 ? undefined : next,
    expireAtMs,
  };
}
