import type { AppliedLimit, ApplyRequest, BucketState, VersionedBucket } from '../core';
import { consume } from '../bucket/consume';

export interface RecordAccess {
  get(key: string): VersionedBucket | undefined;
  set(key: string, state: BucketState, version: number, expireAtMs: number): void;
}

/**
 * How a store that holds its records in this process decides a commit group itself: the bucket/
 * math applied in place, request by request (a later request sees an earlier one's writes).
 */
export function applyInPlace(records: RecordAccess, requests: readonly ApplyRequest[], nowMs: number): AppliedLimit[][] {
  return requests.map(({ limits, hits }) => {
    const decisions = limits.map(({ key, limit }) => consume(records.get(key)?.state, limit, hits, nowMs));
    const admitted = decisions.every((decision) => decision.allowed);
    return limits.map(({ key }, index) => {
      const decision = decisions[index] as (typeof decisions)[number];
      if (decision.next !== undefined && (admitted || !decision.allowed)) {
        records.set(key, decision.next, (records.get(key)?.version ?? 0) + 1, decision.expireAtMs);
      }
      return { allowed: decision.allowed, remaining: decision.remaining, resetAfterMs: decision.resetAfterMs, record: records.get(key) };
    });
  });
}
