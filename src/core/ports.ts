import type { BucketState, Limit, VersionedBucket } from './types';

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

/** One descriptor's limits for the store to decide itself: all admit, or none consumes. */
export interface ApplyRequest {
  readonly limits: readonly { readonly key: string; readonly limit: Limit }[];
  readonly hits: number;
}

/** The store's decision for one limit of an ApplyRequest, and the record it left. */
export interface AppliedLimit {
  readonly allowed: boolean;
  readonly remaining: number;
  readonly resetAfterMs: number;
  readonly record: VersionedBucket | undefined;
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
  /**
   * Decides the requests where the buckets live, with the same math as bucket/ (token bucket or
   * fixed window, `nowMs` from the caller), in request order, atomically per request. The engine
   * uses it when conditional writes keep losing to other writers, so a hot bucket never fails
   * for contention. Results are in request order, limits in request-limit order.
   */
  applyOnShard(requests: readonly ApplyRequest[], nowMs: number): Promise<AppliedLimit[][]>;
  /** Resolves when the store answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
