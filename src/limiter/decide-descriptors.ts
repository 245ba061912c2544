import { MAX_UINT32, type BucketState, type BucketWrite, type DescriptorStatus, type NamedLimit, type VersionedBucket } from '../core';
import { consume, stateToStore } from '../bucket/consume';
import type { LimitDecision } from '../bucket/limit-decision';
import type { DescriptorPlan } from './descriptor-plan';

export interface DescriptorsDecision {
  readonly statuses: DescriptorStatus[];
  /** Conditional writes that make the decision true; all must apply together. */
  readonly writes: BucketWrite[];
}

/** One limit's verdict, however it was reached (here, or applied on the shard). */
export interface LimitOutcome {
  readonly limit: NamedLimit;
  readonly decision: Pick<LimitDecision, 'allowed' | 'remaining' | 'resetAfterMs'>;
}

/**
 * The status of a limited descriptor from its limits' verdicts: admitted only if every limit
 * admitted it; then the tightest limit is reported, otherwise the first one that denied.
 * Shadow mode answers OK whatever happened.
 */
export function limitedStatus(plan: { readonly shadowMode: boolean }, outcomes: readonly LimitOutcome[]): DescriptorStatus {
  const admitted = outcomes.every(({ decision }) => decision.allowed);
  const { limit, decision } = admitted
    ? outcomes.reduce((best, outcome) => (outcome.decision.remaining < best.decision.remaining ? outcome : best))
    : (outcomes.find((outcome) => !outcome.decision.allowed) as LimitOutcome);
  return {
    code: admitted || plan.shadowMode ? 'OK' : 'OVER_LIMIT',
    currentLimit: { requestsPerUnit: limit.requestsPerUnit, unit: limit.unit, name: limit.name },
    limitRemaining: admitted ? decision.remaining : 0,
    resetAfterMs: decision.resetAfterMs,
    available: decision.remaining,
    ...(!admitted && plan.shadowMode ? { shadowed: true } : {}),
  };
}

interface PendingWrite {
  state: BucketState;
  expireAtMs: number;
}

/** The status of a descriptor no rule limits. */
export const NO_LIMIT_STATUS: DescriptorStatus = Object.freeze({ code: 'OK', limitRemaining: 0 });
/** The status of a descriptor whose rule says unlimited. */
export const UNLIMITED_STATUS: DescriptorStatus = Object.freeze({ code: 'OK', limitRemaining: MAX_UINT32 });

/**
 * Decides every descriptor against the loaded records, in request order. Pure.
 * A descriptor's limits are all-or-nothing: it is admitted only if every limit admits it, and
 * only then do its token buckets consume. The same bucket used twice in one request sees the
 * first use's result (envoyproxy/ratelimit's "same descriptor twice" behaviour).
 */
export function decideDescriptors(
  plans: readonly DescriptorPlan[],
  records: ReadonlyMap<string, VersionedBucket | undefined>,
  nowMs: number,
): DescriptorsDecision {
  const pending = new Map<string, PendingWrite>();
  const stateOf = (key: string): BucketState | undefined => pending.get(key)?.state ?? records.get(key)?.state;
  const statuses = plans.map((plan): DescriptorStatus => {
    if (plan.kind === 'no_limit') return NO_LIMIT_STATUS;
    if (plan.kind === 'unlimited') return UNLIMITED_STATUS;
    const outcomes = plan.limits.map(({ limit, bucketKey }) => ({
      limit,
      bucketKey,
      decision: consume(stateOf(bucketKey), limit, plan.hits, nowMs),
    }));
    const admitted = outcomes.every(({ decision }) => decision.allowed);
    for (const { bucketKey, decision } of outcomes) {
      const next = stateToStore(decision, admitted);
      if (next !== undefined) pending.set(bucketKey, { state: next, expireAtMs: decision.expireAtMs });
    }
    return limitedStatus(plan, outcomes);
  });
  const writes = [...pending].map(([key, write]) => ({
    key,
    expectedVersion: records.get(key)?.version ?? 0,
    state: write.state,
    expireAtMs: write.expireAtMs,
  }));
  return { statuses, writes };
}
