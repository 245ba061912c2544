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

export function consumeFixedWindow(
  state: BucketState | undefined,
  limit: Limit,
  hits: number,
  nowMs: number,
): LimitDecision {
  const windowMs = UNIT_SECONDS[limit.unit] * 1000;
  const startMs = windowStartMs(limit, nowMs);
  const endMs = startMs + windowMs;
  const counted = state !== undefined && state.updatedAtMs === startMs ? limit.requestsPerUnit - state.tokens : 0;
  const after = counted + hits;
  const allowed = after <= limit.requestsPerUnit;
  const resetAfterMs = (UNIT_SECONDS[limit.unit] - (Math.floor(nowMs / 1000) % UNIT_SECONDS[limit.unit])) * 1000;
  const decision = {
    allowed,
    remaining: Math.max(0, limit.requestsPerUnit - after),
    resetAfterMs,
    expireAtMs: endMs,
  };
  if (hits === 0) return decision;
  return { ...decision, next: { tokens: limit.requestsPerUnit - after, updatedAtMs: startMs } };
}
