import type { AppliedLimit, ApplyRequest, BucketState, BucketStore, BucketWrite, Clock, CompareAndSetResult, VersionedBucket } from '../core';
import { applyInPlace } from './memory-apply';

export interface MemoryBucketStoreOptions {
  readonly clock: Clock;
  /** Live buckets kept at most; beyond it the least recently written are evicted. */
  readonly maxBuckets: number;
}

const NOTHING_REFUSED: ReadonlyMap<string, VersionedBucket | undefined> = new Map();

interface MemoryRecord extends VersionedBucket {
  readonly expireAtMs: number;
}

/**
 * The embedded single-process store: a Map in last-write order.
 * - A record past its expiry (the time its bucket would be full again) reads as absent.
 * - Beyond `maxBuckets` the least recently written records are evicted, so a flood of distinct
 *   keys costs bounded memory. An evicted bucket that was not yet full comes back full: under
 *   that pressure the store over-admits rather than exhaust memory; `evictions` counts it.
 */
export class MemoryBucketStore implements BucketStore {
  private readonly clock: Clock;
  private readonly maxBuckets: number;
  private readonly records = new Map<string, MemoryRecord>();
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

  async compareAndSet(writes: readonly BucketWrite[]): Promise<CompareAndSetResult> {
    const nowMs = this.clock.nowMs();
    const current = writes.map((write) => this.live(write.key, nowMs));
    // One process is one group: any stale version refuses every write of the call.
    if (writes.some((write, index) => (current[index]?.version ?? 0) !== write.expectedVersion)) {
      return { refused: new Map(writes.map((write, index) => [write.key, current[index]])) };
    }
    for (const write of writes) this.put(write.key, write.state, write.expectedVersion + 1, write.expireAtMs);
    this.evictOverflow();
    return { refused: NOTHING_REFUSED };
  }

  async applyOnShard(requests: readonly ApplyRequest[], nowMs: number): Promise<AppliedLimit[][]> {
    const storeNowMs = this.clock.nowMs();
    const applied = applyInPlace(
      { get: (key) => this.live(key, storeNowMs), set: (key, state, version, expireAtMs) => this.put(key, state, version, expireAtMs) },
      requests,
      nowMs,
    );
    this.evictOverflow();
    return applied;
  }

  async ping(): Promise<void> {}

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
    for (const [key, record] of this.records) {
      if (++checked > maxChecks) break;
      if (record.expireAtMs <= nowMs) {
        this.records.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  private live(key: string, nowMs: number): VersionedBucket | undefined {
    const record = this.records.get(key);
    if (record === undefined || record.expireAtMs > nowMs) return record;
    this.records.delete(key);
    return undefined;
  }

  private put(key: string, state: BucketState, version: number, expireAtMs: number): void {
    // Delete first so that Map order stays last-write order, which eviction relies on.
    this.records.delete(key);
    this.records.set(key, { state, version, expireAtMs });
  }

  private evictOverflow(): void {
    if (this.records.size <= this.maxBuckets) return;
    for (const key of this.records.keys()) {
      this.records.delete(key);
      this.evictionCount++;
      if (this.records.size <= this.maxBuckets) return;
    }
  }
}
