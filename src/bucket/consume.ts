import type { BucketState, Limit } from '../core';
import { consumeFixedWindow } from './fixed-window';
import type { LimitDecision } from './limit-decision';
import { consumeTokenBucket } from './token-bucket';

/** Decide `hits` against one limit with the limit's algorithm. Pure: no clock, no I/O. */
export function consume(state: BucketState | undefined, limit: Limit, hits: number, nowMs: number): LimitDecision {
  return limit.algorithm === 'fixed_window'
    ? consumeFixedWindow(state, limit, hits, nowMs)
    : consumeTokenBucket(state, limit, hits, nowMs);
}
