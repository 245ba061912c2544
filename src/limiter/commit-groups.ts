import type { ApplyRequest, BucketWrite, CommitGroup } from '../core';
import { bucketGroup } from '../bucket/bucket-key';
import type { DescriptorPlan } from './descriptor-plan';

/** A CommitGroup plus its id and which request descriptors its requests stand for. */
export interface PlannedCommitGroup extends CommitGroup {
  readonly id: string;
  readonly planIndexes: readonly number[];
}

/** A limited descriptor as the store decides it: its hits against each of its buckets. */
export function applyRequestOf(plan: DescriptorPlan & { kind: 'limited' }): ApplyRequest {
  return { hits: plan.hits, limits: plan.limits.map(({ bucketKey, limit }) => ({ key: bucketKey, limit })) };
}

/** The group of a limited descriptor: all its limits share one (see bucketGroup). */
export function planGroup(plan: DescriptorPlan & { kind: 'limited' }): string {
  return bucketGroup(plan.limits[0]?.bucketKey ?? '');
}

/**
 * Gathers the writes of one decision by bucket group, each with every limited descriptor of the
 * request that uses that group, in request order, so the store can decide them again as a unit.
 * `storeDecides` groups go without writes (the engine had no copy of their records); groups
 * with neither writes nor that mark (only exact local denials) are not sent at all.
 */
export interface CommitGroupOptions {
  /** Groups to send without writes, for the store to decide. */
  readonly storeDecides: ReadonlySet<string>;
  /** What a local fallback admitted against a group while its shard was down. */
  readonly debitsOf: (group: string) => readonly ApplyRequest[];
  /** The request's id and how long the store keeps its answer; absent = no request id. */
  readonly idempotency?: { readonly requestId: string; readonly ttlMs: number } | undefined;
}

export function commitGroups(plans: readonly DescriptorPlan[], writes: readonly BucketWrite[], options: CommitGroupOptions): PlannedCommitGroup[] {
  const { storeDecides, debitsOf, idempotency } = options;
  const groups = new Map<string, { writes: BucketWrite[]; requests: CommitGroup['requests'][number][]; planIndexes: number[] }>();
  for (const id of storeDecides) groups.set(id, { writes: [], requests: [], planIndexes: [] });
  for (const write of writes) {
    const id = bucketGroup(write.key);
    const group = groups.get(id);
    if (group === undefined) groups.set(id, { writes: [write], requests: [], planIndexes: [] });
    else group.writes.push(write);
  }
  plans.forEach((plan, index) => {
    if (plan.kind !== 'limited') return;
    const group = groups.get(planGroup(plan));
    if (group === undefined) return;
    group.requests.push(applyRequestOf(plan));
    group.planIndexes.push(index);
  });
  return [...groups].map(([id, group]) => {
    const debits = debitsOf(id);
    return {
      id,
      ...group,
      ...(debits.length === 0 ? {} : { debits }),
      // Kept beside the group's buckets (same shard), so any instance finds the first answer.
      ...(idempotency === undefined ? {} : { idempotency: { key: `idem|${id}|${idempotency.requestId}`, ttlMs: idempotency.ttlMs } }),
    };
  });
}
