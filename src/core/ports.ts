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

export type CompareAndSetResult =
  | { readonly applied: true }
  | {
      readonly applied: false;
      /** The current record of every key whose version did not match (undefined = absent). */
      readonly conflicts: ReadonlyMap<string, VersionedBucket | undefined>;
    };

/**
 * Version-stamped bucket storage. Implementations MUST be safe for concurrent calls.
 *
 * `compareAndSet` is all-or-nothing over the writes of one call: if any key's version differs
 * from its `expectedVersion`, nothing is written and the conflicting records are returned. An
 * applied write stores the record with version `expectedVersion + 1`. The engine relies on this
 * to keep a descriptor with several limits atomic; a sharded store keeps all keys of one call on
 * one shard or reports which shard failed.
 */
export interface BucketStore {
  /** Current records, in the order of `keys`; undefined for absent or expired buckets. */
  load(keys: readonly string[]): Promise<(VersionedBucket | undefined)[]>;
  compareAndSet(writes: readonly BucketWrite[]): Promise<CompareAndSetResult>;
  /** Resolves when the store answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
