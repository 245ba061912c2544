import type { BucketWrite, VersionedBucket } from '../core';
import { ExpiringCache } from './expiring-cache';

/**
 * Changes in a row this instance must have been a record's only writer before it decides an
 * admission from its copy. A copy of a record other instances also write is usually stale, and
 * a conditional write from a stale copy only loses to them (a version conflict); for such
 * records the store deciding is just as cheap (one round trip) and never conflicts.
 */
const SOLE_WRITER_STREAK = 3;

/**
 * How long after the expiry we gave a record it is taken as gone from the shard. The shard counts
 * the time to live from when the write reaches it, a little after we computed it; within the
 * margin either answer may be wrong, and a wrong one costs a version conflict, decided in the same
 * round trip.
 */
const EXPIRY_MARGIN_MS = 5;

interface LocalRecord {
  readonly record: VersionedBucket | undefined;
  /** Consecutive observations in which nobody but this instance changed the record. */
  readonly soleWriterStreak: number;
  /** When the shard drops the record (our own write set it): a full bucket is no record. */
  readonly expireAtMs?: number | undefined;
}

export interface RecordLookup {
  readonly found: boolean;
  readonly record: VersionedBucket | undefined;
  /** Safe to decide an admission from: this instance has lately been the record's only writer. */
  readonly soleWriter: boolean;
}

const MISS: RecordLookup = Object.freeze({ found: false, record: undefined, soleWriter: false });

/**
 * The engine's write-through copy of bucket records, and for each whether this instance seems
 * to be its only writer. A stale copy is safe (other writers can only lower a bucket, so a
 * denial from it is exact and an admission from it fails its version check); the sole-writer
 * evidence keeps such admissions, and their conflicts, to records nobody else is writing.
 */
export class LocalRecords {
  private readonly copies: ExpiringCache<LocalRecord>;
  /** Our conditional writes on their way to the shard: the record each leaves if it lands. */
  private readonly inFlight = new Map<string, VersionedBucket>();

  constructor(options: { readonly ttlMs: number; readonly maxEntries: number }) {
    this.copies = new ExpiringCache(options);
  }

  /** False when copies are never kept (an in-process store needs none). */
  get enabled(): boolean {
    return this.copies.enabled;
  }

  lookup(key: string, nowMs: number): RecordLookup {
    if (!this.copies.enabled) return MISS;
    const value = this.copies.peek(key, nowMs);
    if (value === undefined) return MISS;
    const gone = value.expireAtMs !== undefined && nowMs >= value.expireAtMs + EXPIRY_MARGIN_MS;
    return { found: true, record: gone ? undefined : value.record, soleWriter: value.soleWriterStreak >= SOLE_WRITER_STREAK };
  }

  /**
   * As lookup, but taking the record as the admissions this instance has decided and not yet
   * seen land leave it: `queued`'s (calls waiting for the next commit) if it has the key, else
   * our conditional write on its way. Those admissions only lower the bucket, so what this
   * denies, the shard denies too once they land. Should a write lose its version check instead,
   * the shard decides its admissions itself and may refuse some: a denial from here can then be
   * one the shard would have admitted (under-admission for one round trip, never over-admission).
   */
  lookupAhead(key: string, nowMs: number, queued: ReadonlyMap<string, VersionedBucket> | undefined): RecordLookup {
    const local = this.lookup(key, nowMs);
    const ahead = queued?.get(key) ?? this.inFlight.get(key);
    return ahead === undefined || !local.found ? local : { found: true, record: ahead, soleWriter: local.soleWriter };
  }

  /** A conditional write is on its way to the shard (one at a time per record: the engine queues the rest). */
  sending(write: BucketWrite): void {
    this.inFlight.set(write.key, recordLeftBy(write));
  }

  /** The write `sending` announced has settled, whatever its outcome. */
  sent(key: string): void {
    this.inFlight.delete(key);
  }

  /**
   * Our conditional write matched: nobody wrote between our copy and it. The shard drops the
   * record at `expireAtMs` (when the bucket is full again); from then on the copy is of no record,
   * so the next write expects none instead of losing its version check to the expiry.
   */
  written(key: string, record: VersionedBucket, expireAtMs: number, atMs: number): void {
    const previous = this.copies.peek(key, atMs);
    this.copies.set(key, { record, soleWriterStreak: (previous?.soleWriterStreak ?? 0) + 1, expireAtMs }, atMs);
  }

  /**
   * The store decided and returned the records. `firstSeen` is the record right after our first
   * request in that commit, which our own `ownSteps` (that request, and debits before it) moved by
   * at most that many versions from our copy; a larger step, or a conflict, means another writer.
   * `record` is the record after our last request, which the shard drops at `expireAtMs`.
   */
  decidedByStore(
    key: string,
    update: { readonly firstSeen: VersionedBucket | undefined; readonly ownSteps: number; readonly record: VersionedBucket | undefined; readonly conflicted: boolean; readonly expireAtMs: number | undefined },
    atMs: number,
  ): void {
    const previous = this.lookup(key, atMs);
    const steps = (update.firstSeen?.version ?? 0) - (previous.record?.version ?? 0);
    const alone = previous.found && !update.conflicted && steps >= 0 && steps <= update.ownSteps;
    const streak = alone ? (this.copies.peek(key, atMs)?.soleWriterStreak ?? 0) + 1 : 0;
    this.copies.set(key, { record: update.record, soleWriterStreak: streak, expireAtMs: update.expireAtMs }, atMs);
  }

  /** A record read from the store outside a decision (pre-warm): nothing yet says who writes it. */
  loaded(key: string, record: VersionedBucket | undefined, atMs: number): void {
    this.copies.set(key, { record, soleWriterStreak: 0 }, atMs);
  }

  forget(key: string): void {
    this.copies.forget(key);
  }
}

/** The record a conditional write leaves on the shard if its version check passes. */
export function recordLeftBy(write: BucketWrite): VersionedBucket {
  return { version: write.expectedVersion + 1, state: write.state };
}
