import type { BucketState, VersionedBucket } from './types';

/** Time source. Core logic reads time only through this, so tests move time without sleeping. */
export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = Object.freeze({ nowMs: () => Date.now() });

/** A conditional write: apply only if the record's version is still `expectedVersion` (0 = absent). */
export interface BucketWrite {
  readonly key: string;
  readonly expectedVersion: number;
  readonly state: BucketState;
  /** When the record may be forgotten: a bucket that would be full again is the same as no bucket. */
  readonly expireAtMs: number;
}

/**
 * Outcome of a conditional write. Writes are grouped by where they live (one group per shard);
 * a group is applied whole or refused whole. `refused` holds every key of every refused group
 * with its current record (undefined = absent); keys not in it were written.
 */
export interface CompareAndSetResult {
  readonly refused: ReadonlyMap<string, VersionedBucket | undefined>;
}

/**
 * Version-stamped bucket storage. Implementations MUST be safe for concurrent calls.
 *
 * `compareAndSet` writes each bucket only if its version is still `expectedVersion`, storing
 * version `expectedVersion + 1`. All keys whose ids share the part before `#` (the limits of one
 * rule for one descriptor) live in one group, so a descriptor with several limits is atomic.
 */
export interface BucketStore {
  /** Current records, in the order of `keys`; undefined for absent or expired buckets. */
  load(keys: readonly string[]): Promise<(VersionedBucket | undefined)[]>;
  compareAndSet(writes: readonly BucketWrite[]): Promise<CompareAndSetResult>;
  /** Resolves when the store answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
