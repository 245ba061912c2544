import type { VersionedBucket } from '../core';

interface CachedRecord {
  readonly record: VersionedBucket | undefined;
  readonly cachedAtMs: number;
}

export interface RecordCacheOptions {
  /** How long a copy is trusted without reloading; 0 disables the cache. */
  readonly ttlMs: number;
  /** Copies kept at most; the oldest are dropped beyond it. */
  readonly maxEntries: number;
}

/**
 * The engine's write-through copy of bucket records, so that a steady-state decision costs one
 * conditional write and no read. A stale copy is safe: other writers can only lower a bucket
 * (they consume; time refills the same everywhere), so a denial computed from a copy is exact,
 * and an admission from a stale copy fails its version check and is decided again.
 */
export class RecordCache {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly entries = new Map<string, CachedRecord>();

  constructor(options: RecordCacheOptions) {
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.maxEntries;
  }

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  /** The cached record of `key` if fresh; `found` distinguishes a cached absence from a miss. */
  get(key: string, nowMs: number): { found: boolean; record: VersionedBucket | undefined } {
    const entry = this.entries.get(key);
    if (entry === undefined || nowMs - entry.cachedAtMs >= this.ttlMs || nowMs < entry.cachedAtMs) {
      return { found: false, record: undefined };
    }
    return { found: true, record: entry.record };
  }

  set(key: string, record: VersionedBucket | undefined, nowMs: number): void {
    if (!this.enabled) return;
    this.entries.delete(key);
    this.entries.set(key, { record, cachedAtMs: nowMs });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
