import { WriteOrderedMap, type AppliedLimit, type ApplyRequest, type BucketState, type VersionedBucket } from '../core';
import { applyInPlace } from '../bucket/apply-requests';
import { bucketGroup } from '../bucket/bucket-key';

/** Share of capacity and rate a local fallback bucket gets while its shard is down. */
export const FALLBACK_SHARE = 0.5;

interface FallbackRecord extends VersionedBucket {
  readonly expireAtMs: number;
}

/**
 * Local buckets for shards that do not answer: each at FALLBACK_SHARE of the limit's capacity
 * and rate, so that several instances falling back at once stay near the global limit. Hits
 * admitted here are owed to the shard and written back (as debits) once it answers again.
 * Bounded: beyond `maxEntries` the oldest buckets and debts are dropped (and counted).
 */
export class FallbackBuckets {
  private readonly records = new WriteOrderedMap<string, FallbackRecord>();
  /** group → key → what was admitted locally against it. */
  private readonly owed = new WriteOrderedMap<string, Map<string, { limit: ApplyRequest['limits'][number]['limit']; hits: number }>>();
  dropped = 0;

  constructor(private readonly maxEntries: number) {}

  decide(requests: readonly ApplyRequest[], nowMs: number): AppliedLimit[][] {
    const halved = requests.map(({ hits, limits }) => ({
      hits,
      limits: limits.map(({ key, limit }) => ({
        key,
        limit: { ...limit, requestsPerUnit: limit.requestsPerUnit * FALLBACK_SHARE, capacity: limit.capacity * FALLBACK_SHARE },
      })),
    }));
    const results = applyInPlace(
      {
        get: (key) => {
          const record = this.records.get(key);
          return record !== undefined && record.expireAtMs > nowMs ? record : undefined;
        },
        set: (key, state: BucketState, version, expireAtMs) => this.records.set(key, { state, version, expireAtMs }),
      },
      halved,
      nowMs,
    );
    requests.forEach(({ hits, limits }, index) => {
      if (hits === 0 || !(results[index] ?? []).every((result) => result.allowed)) return;
      for (const { key, limit } of limits) this.owe(key, limit, hits);
    });
    this.trim();
    return results;
  }

  /** Debts of one group, as debit requests for the store. */
  debitsFor(group: string): ApplyRequest[] {
    return [...(this.owed.get(group) ?? new Map()).entries()].map(([key, { limit, hits }]) => ({ hits, limits: [{ key, limit }] }));
  }

  /** Cheap check for the request path: does this group carry a debt? */
  owes(group: string): boolean {
    return this.owed.has(group);
  }

  owedGroups(): string[] {
    return [...this.owed.keys()];
  }

  /** The shard took the group's debts. */
  settle(group: string): void {
    this.owed.delete(group);
  }

  private owe(key: string, limit: ApplyRequest['limits'][number]['limit'], hits: number): void {
    const group = bucketGroup(key);
    const debts = this.owed.get(group) ?? new Map();
    debts.set(key, { limit, hits: (debts.get(key)?.hits ?? 0) + hits });
    this.owed.set(group, debts);
  }

  private trim(): void {
    for (const map of [this.records, this.owed] as WriteOrderedMap<string, unknown>[]) {
      while (map.size > this.maxEntries && map.shift() !== undefined) this.dropped++;
    }
  }
}
