import type { AppliedLimit, ApplyRequest, BucketState, VersionedBucket } from '../core';
import { consume, stateToStore } from './consume';
import { debit } from './debit';

export interface RecordAccess {
  get(key: string): VersionedBucket | undefined;
  set(key: string, state: BucketState, version: number, expireAtMs: number): void;
}

/**
 * Decides requests against records held in this process (the memory store, the engine's
 * fallback buckets): the bucket math applied in place, request by request, so a later request
 * sees an earlier one's writes. All limits of a request admit it, or none of them consumes.
 */
export function applyInPlace(records: RecordAccess, requests: readonly ApplyRequest[], nowMs: number): AppliedLimit[][] {
  return requests.map(({ limits, hits }) => {
    const decisions = limits.map(({ key, limit }) => consume(records.get(key)?.state, limit, hits, nowMs));
    const admitted = decisions.every((decision) => decision.allowed);
    return limits.map(({ key }, index) => {
      const decision = decisions[index] as (typeof decisions)[number];
      const next = stateToStore(decision, admitted);
      if (next !== undefined) records.set(key, next, (records.get(key)?.version ?? 0) + 1, decision.expireAtMs);
      return { allowed: decision.allowed, remaining: decision.remaining, resetAfterMs: decision.resetAfterMs, record: records.get(key) };
    });
  });
}


/** Takes each debit's hits from all its limits unconditionally (see bucket/debit.ts). */
export function debitInPlace(records: RecordAccess, debits: readonly ApplyRequest[], nowMs: number): void {
  for (const { limits, hits } of debits) {
    for (const { key, limit } of limits) {
      const current = records.get(key);
      const { next, expireAtMs } = debit(current?.state, limit, hits, nowMs);
      records.set(key, next, (current?.version ?? 0) + 1, expireAtMs);
    }
  }
}
