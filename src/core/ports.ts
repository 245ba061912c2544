import type { BucketState, CapacityOverride, Limit, OverrideTarget, VersionedBucket } from './types';

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

/** One descriptor's limits and hits: what the store decides itself when a version has moved. */
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
 * The buckets of one group (one domain + descriptor entries: every limit of the rules it
 * matched) as the engine decided them: the conditional writes, and the same decisions as
 * requests, in request order, for the store to decide again if a version moved. A group with
 * no writes (the engine had no copy of its records) is always decided by the store.
 */
export interface CommitGroup {
  readonly writes: readonly BucketWrite[];
  readonly requests: readonly ApplyRequest[];
  /**
   * Hits admitted elsewhere (by a local fallback while the shard was down) to take from the
   * buckets first, unconditionally: the record keeps the lower token count. A group with
   * debits is always decided by the store.
   */
  readonly debits?: readonly ApplyRequest[];
  /**
   * The caller's request id for this group: the store keeps the group's verdicts under `key`
   * for `ttlMs`, and a commit with the same key gets them back and changes nothing.
   * A group with an idempotency key is always decided by the store.
   */
  readonly idempotency?: { readonly key: string; readonly ttlMs: number };
}

/**
 * `written`: every version matched and the engine's writes were stored (version + 1).
 * `decided`: a version had moved (another writer got there first), so the store applied the
 * requests itself with the same math, atomically, and these are its verdicts.
 */
export type CommitOutcome =
  | { readonly kind: 'written' }
  | { readonly kind: 'decided'; readonly results: readonly (readonly AppliedLimit[])[] }
  /** The group's shard did not answer; nothing is known to be written. */
  | { readonly kind: 'unavailable'; readonly error: Error };

export interface CommitOptions {
  /**
   * How long the caller can wait for the outcomes (real milliseconds): a group whose shard has
   * not answered by then comes back `unavailable`, and transient failures are retried only
   * within it. Absent = the store's own command timeout.
   */
  readonly timeoutMs?: number;
  /** Try shards that failed recently too (the write-back at shutdown, which gets no second chance). */
  readonly evenIfDown?: boolean;
}

/**
 * Version-stamped bucket storage. Implementations MUST be safe for concurrent calls.
 *
 * `commit` is the only write: per group, an optimistic conditional write that, when it loses to
 * another writer, turns into the store deciding the same requests itself — in the same round
 * trip, so contention never costs a retry and never fails a request. Each group is atomic, and
 * a group whose shard is down comes back `unavailable` without failing the other groups.
 */
export interface BucketStore {
  /** Current records, in the order of `keys`; undefined for absent or expired buckets. */
  load(keys: readonly string[]): Promise<(VersionedBucket | undefined)[]>;
  /** One outcome per group, in order. `nowMs` is the caller's clock, used if the store decides. */
  commit(groups: readonly CommitGroup[], nowMs: number, options?: CommitOptions): Promise<CommitOutcome[]>;
  /**
   * The same as `commit`, synchronously, for an in-process store: the engine then needs no queue
   * and no local copy, as nothing can run between its read and its write.
   */
  commitNow?(groups: readonly CommitGroup[], nowMs: number): CommitOutcome[];
  /** Resolves when the store answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  /** Where a bucket lives: its shard's name, or 'memory'. */
  placement(key: string): string;
  /** Forgets buckets: the next use finds them full (admin reset). */
  remove(keys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** Outcome of one rate-limit call (gRPC, /json or /rate). */
export type CallOutcome = 'ok' | 'over_limit' | 'error';
/** Verdict on one limited descriptor; `shadow` = over limit but let through (shadow mode). */
export type DescriptorVerdict = 'allowed' | 'over_limit' | 'shadow';

/** What the engine reports as it works, for metrics; every method must be cheap and never throw. */
export interface EngineObserver {
  /** `domain` is a configured domain, 'rate_api' for POST /rate, or 'unknown' (label cardinality stays bounded). */
  call(domain: string, outcome: CallOutcome): void;
  /** `rule` only for rules with detailed_metric. */
  descriptor(domain: string, verdict: DescriptorVerdict, rule: string | undefined): void;
  versionConflict(): void;
  fallbackDecisions(count: number): void;
  /** |local copy − store record| / capacity, when the store's record replaces a local copy. */
  cacheDrift(ratio: number): void;
}

/** What a sharded store reports, for metrics. */
export interface StoreObserver {
  roundTrip(shard: string, operation: string, seconds: number, ok: boolean): void;
  retry(shard: string): void;
  handoff(outcome: 'seeded' | 'missed'): void;
}

/**
 * Where the operators' temporary overrides live, so every instance (and region) applies the
 * same ones. Expired overrides are never returned.
 */
export interface OverrideStore {
  list(nowMs: number): Promise<CapacityOverride[]>;
  /** Adds or replaces the override for its target; `nowMs` is the caller's clock. */
  put(override: CapacityOverride, nowMs: number): Promise<void>;
  /** Removes the override for `target`; false if there was none. */
  remove(target: OverrideTarget): Promise<boolean>;
}

/** The text key of an override's target: one override per target. */
export function overrideTargetId(target: OverrideTarget): string {
  return target.rule === undefined ? `bucket:${target.bucket}` : `rule:${target.rule}`;
}

/** One shard's answer to a health probe. */
export interface ShardHealth {
  readonly shard: string;
  readonly ok: boolean;
  readonly latencyMs?: number | undefined;
  readonly error?: string | undefined;
}
