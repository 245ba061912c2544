import type { Algorithm, BucketState, Limit } from '../core';
import { consumeFixedWindow } from './fixed-window';
import type { LimitDecision } from './limit-decision';
import { consumeTokenBucket } from './token-bucket';

/** Decide `hits` against one limit with the limit's algorithm. Pure: no clock, no I/O. */
export function consume(state: BucketState | undefined, limit: Limit, hits: number, nowMs: number): LimitDecision {
  return limit.algorithm === 'fixed_window'
    ? consumeFixedWindow(state, limit, hits, nowMs)
    : consumeTokenBucket(state, limit, hits, nowMs);
}

/**
 * What a request leaves in one limit's record: the limit's new state when every limit admitted
 * the request, and also when this limit itself denied it (a fixed window counts the denied hits);
 * nothing when another limit denied a request this one admitted.
 */
export function stateToStore(decision: LimitDecision, requestAdmitted: boolean): BucketState | undefined {
  return requestAdmitted || !decision.allowed ? decision.next : undefined;
}

/**
 * Whether a request wrote a limit's record, from the verdicts alone (a shard's decision returns
 * no states): stateToStore's rule, with the algorithms' own (a token bucket has a new state only
 * when it admits hits, a fixed window whenever there are hits).
 */
export function storedState(algorithm: Algorithm, hits: number, limitAllowed: boolean, requestAdmitted: boolean): boolean {
  return hits > 0 && (requestAdmitted || (algorithm === 'fixed_window' && !limitAllowed));
}
