import { WriteOrderedMap, type BucketState, type BucketStore, type Clock, type CommitGroup, type CommitOutcome, type VersionedBucket } from '../core';
import { applyInPlace, debitInPlace, type RecordAccess } from '../bucket/apply-requests';

export interface MemoryBucketStoreOptions {
  readonly clock: Clock;
  /** Live buckets kept at most; beyond it the least recently written are evicted. */
  readonly maxBuckets: number;
}

const WRITTEN: CommitOutcome = Object.freeze({ kind: 'written' });
/** Records below which expired ones are left for the sweep (see dropExpiredOldest). */
const COMFORTABLE_RECORDS = 10_000;

interface MemoryRecord extends VersionedBucket {
  readonly expireAtMs: number;
}

/**
 * The embedded single-process store: a map in last-write order.
 * - A record past its expiry (the time its bucket would be full again) reads as absent.
 * - Beyond `maxBuckets` the least recently written records are evicted, so a flood of distinct
 *   keys costs bounded memory. An evicted bucket that was not yet full comes back full: under
 *   that pressure the store over-admits rather than exhaust memory; `evictions` counts it.
 */
export class MemoryBucketStore implements BucketStore {
  private readonly clock: Clock;
  private readonly maxBuckets: number;
  private readonly records = new WriteOrderedMap<string, MemoryRecord>();
  /** Verdicts kept under idempotency keys (request ids), bounded like the buckets. */
  private readonly answered = new WriteOrderedMap<string, { outcome: CommitOutcome; expireAtMs: number }>();
  private evictionCount = 0;

  constructor(options: MemoryBucketStoreOptions) {
    if (!Number.isSafeInteger(options.maxBuckets) || options.maxBuckets < 1) {
      throw new RangeError(`maxBuckets must be a positive integer, got ${options.maxBuckets}`);
    }
    this.clock = options.clock;
    this.maxBuckets = options.maxBuckets;
  }

  get size(): number {
    return this.records.size;
  }

  get evictions(): number {
    return this.evictionCount;
  }

  async load(keys: readonly string[]): Promise<(VersionedBucket | undefined)[]> {
    const nowMs = this.clock.nowMs();
    return keys.map((key) => this.live(key, nowMs));
  }

  async commit(groups: readonly CommitGroup[], nowMs: number): Promise<CommitOutcome[]> {
    return this.commitNow(groups, nowMs);
  }

  commitNow(groups: readonly CommitGroup[], nowMs: number): CommitOutcome[] {
    const storeNowMs = this.clock.nowMs();
    const records: RecordAccess = {
      get: (key) => this.live(key, storeNowMs),
      set: (key, state, version, expireAtMs) => this.put(key, state, version, expireAtMs),
    };
    const outcomes = groups.map((group): CommitOutcome => {
      const { idempotency } = group;
      if (idempotency !== undefined) {
        const seen = this.answered.get(idempotency.key);
        if (seen !== undefined && seen.expireAtMs > storeNowMs) return seen.outcome;
      }
      if (group.debits !== undefined || idempotency !== undefined) {
        debitInPlace(records, group.debits ?? [], nowMs);
        const outcome: CommitOutcome = { kind: 'decided', results: applyInPlace(records, group.requests, nowMs) };
        if (idempotency !== undefined) this.remember(idempotency.key, outcome, storeNowMs + idempotency.ttlMs);
        return outcome;
      }
      const versionsMatch = group.writes.every((write) => (records.get(write.key)?.version ?? 0) === write.expectedVersion);
      if (group.writes.length > 0 && versionsMatch) {
        for (const write of group.writes) this.put(write.key, write.state, write.expectedVersion + 1, write.expireAtMs);
        return WRITTEN;
      }
      return { kind: 'decided', results: applyInPlace(records, group.requests, nowMs) };
    });
    this.evictOverflow();
    this.dropExpiredOldest(storeNowMs);
    return outcomes;
  }

  async ping(): Promise<void> {}

  placement(): string {
    return 'memory';
  }

  async remove(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.records.delete(key);
  }

  async close(): Promise<void> {
    this.records.clear();
  }

  /**
   * Drops expired records, oldest writes first, looking at no more than `maxChecks` of them so
   * one sweep never stalls the event loop. Returns how many were dropped.
   */
  sweepExpired(maxChecks = 10_000): number {
    const nowMs = this.clock.nowMs();
    let checked = 0;
    let dropped = 0;
    for (const [key, record] of this.records.oldestFirst()) {
      if (++checked > maxChecks) break;
      if (record.expireAtMs <= nowMs) {
        this.records.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * The record if it has not expired. An expired one is left for its next write to replace in
   * place (or for the sweep): deleting it here and inserting it again a moment later churned the
   * map on every call of a bucket that is full again between calls.
   */
  private live(key: string, nowMs: number): VersionedBucket | undefined {
    const record = this.records.get(key);
    return record === undefined || record.expireAtMs > nowMs ? record : undefined;
  }

  private put(key: string, state: BucketState, version: number, expireAtMs: number): void {
    this.records.set(key, { state, version, expireAtMs });
  }

  private remember(key: string, outcome: CommitOutcome, expireAtMs: number): void {
    this.answered.set(key, { outcome, expireAtMs });
    if (this.answered.size > this.maxBuckets) this.answered.shift();
  }

  /**
   * Past a comfortable size, each commit also drops up to two expired records from the oldest
   * writes: a stream of distinct keys, whose records expire at once and are never read again,
   * then keeps about as many records as are live instead of filling up to `maxBuckets` between
   * sweeps. Below it, expired records wait for their next write (replaced in place) or the sweep.
   */
  private dropExpiredOldest(nowMs: number): void {
    for (let dropped = 0; dropped < 2 && this.records.size > COMFORTABLE_RECORDS; dropped++) {
      const oldest = this.records.oldestValue();
      if (oldest === undefined || oldest.expireAtMs > nowMs) return;
      this.records.shift();
    }
  }

  private evictOverflow(): void {
    while (this.records.size > this.maxBuckets && this.records.shift() !== undefined) this.evictionCount++;
  }
}
