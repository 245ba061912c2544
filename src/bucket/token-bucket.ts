import { UNIT_SECONDS, type BucketState, type Limit } from '../core';
import type { LimitDecision } from './limit-decision';

/*
 * NOTE on semantics (DESIGN.md "Buckets"):
 * - tokens = min(C, tokens + elapsed·R), elapsed clamped at ≥ 0 so a clock that runs behind never
 *   mints tokens; updatedAtMs never moves backwards for the same reason.
 * - A request of `hits` is admitted iff tokens ≥ hits; a denied request consumes nothing, so a
 *   client hammering an empty bucket does not push its recovery further out.
 * - hits = 0 checks without consuming: it is denied when not even one whole token is left, i.e.
 *   when a request of one hit would be denied now.
 * - An absent record is a full bucket; the record expires when the bucket would be full again.
 */

/** Refill rate in tokens per millisecond. */
export function refillPerMs(limit: Limit): number {
  return limit.requestsPerUnit / (UNIT_SECONDS[limit.unit] * 1000);
}

/** Token level at `nowMs`, refilled from `state` (absent = full). */
export function tokensAt(state: BucketState | undefined, limit: Limit, nowMs: number): number {
  if (state === undefined) return limit.capacity;
  const elapsedMs = Math.max(0, nowMs - state.updatedAtMs);
  return Math.min(limit.capacity, state.tokens + elapsedMs * refillPerMs(limit));
}

/**
 * How long a record stays on its shard after a write at least, even when its bucket is full
 * sooner (bucket-commit.lua keeps the same). A full record decides exactly as no record, so
 * keeping it changes no decision; dropped within milliseconds, the record of a fast-refilling
 * bucket came and went between one instance's writes, and a write that found it gone by the
 * local copy's reckoning and still there by the shard's (or the other way round) lost its
 * version check: 5–6% of commits on the bench's Zipf workload, with a single instance.
 */
export const RECORD_MIN_LIFETIME_MS = 1000;

/** When a token bucket's record written at `updatedAtMs` leaves its shard, its bucket being full at `fullAtMs`. */
export function recordExpiryMs(updatedAtMs: number, fullAtMs: number): number {
  return Math.max(fullAtMs, updatedAtMs + RECORD_MIN_LIFETIME_MS);
}

/** Tolerance for floating-point drift in refill sums: 1e-9 of a token is never a whole request. */
const EPSILON = 1e-9;

export function consumeTokenBucket(
  state: BucketState | undefined,
  limit: Limit,
  hits: number,
  nowMs: number,
): LimitDecision {
  const tokens = tokensAt(state, limit, nowMs);
  const needed = hits === 0 ? 1 : hits;
  const allowed = tokens + EPSILON >= needed;
  const after = allowed ? Math.max(0, tokens - hits) : tokens;
  const rate = refillPerMs(limit);
  // The tolerance keeps float noise (3600000.0000000005 ms) from adding a whole millisecond.
  const resetAfterMs = rate > 0 ? Math.max(0, Math.ceil(Math.max(0, limit.capacity - after) / rate - 1e-6)) : 0;
  const remaining = Math.max(0, Math.floor(after + EPSILON));
  // Every decision is built with the same properties in the same order: on the hot path, one
  // object shape keeps property access monomorphic (spreading into variants did not).
  if (!allowed || hits === 0) return { allowed, remaining, resetAfterMs, next: undefined, expireAtMs: nowMs + resetAfterMs };
  const updatedAtMs = Math.max(nowMs, state?.updatedAtMs ?? nowMs);
  return { allowed, remaining, resetAfterMs, next: { tokens: after, updatedAtMs }, expireAtMs: recordExpiryMs(updatedAtMs, updatedAtMs + resetAfterMs) };
}
