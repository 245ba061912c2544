import { WriteOrderedMap } from '../core';

const MISS = Object.freeze({ found: false, value: undefined });

export interface ExpiringCacheOptions {
  /** How long an entry is trusted; 0 disables the cache. */
  readonly ttlMs: number;
  /** Entries kept at most; the oldest are dropped beyond it. */
  readonly maxEntries: number;
}

/**
 * A bounded map whose entries are trusted for `ttlMs` of the injected clock's time: the engine's
 * copy of bucket records (LocalRecords) and the answers it gave to request ids.
 */
export class ExpiringCache<V> {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly entries = new WriteOrderedMap<string, { value: V; cachedAtMs: number }>();

  constructor(options: ExpiringCacheOptions) {
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.maxEntries;
  }

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  /** The entry for `key` if fresh; `found` distinguishes a cached undefined from a miss. */
  get(key: string, nowMs: number): { found: boolean; value: V | undefined } {
    const entry = this.fresh(key, nowMs);
    return entry === undefined ? MISS : { found: true, value: entry.value };
  }

  /** The value for `key` if fresh, for values that are never undefined (no result object to build). */
  peek(key: string, nowMs: number): V | undefined {
    return this.fresh(key, nowMs)?.value;
  }

  set(key: string, value: V, nowMs: number): void {
    if (!this.enabled) return;
    this.entries.set(key, { value, cachedAtMs: nowMs });
    if (this.entries.size > this.maxEntries) this.entries.shift();
    // Stale entries go as newer ones come, so a stream of distinct keys keeps only the last
    // ttlMs of them, not maxEntries.
    for (let oldest = this.entries.oldestValue(); oldest !== undefined && nowMs - oldest.cachedAtMs >= this.ttlMs; oldest = this.entries.oldestValue()) {
      this.entries.shift();
    }
  }

  private fresh(key: string, nowMs: number): { value: V; cachedAtMs: number } | undefined {
    const entry = this.entries.get(key);
    return entry === undefined || nowMs - entry.cachedAtMs >= this.ttlMs || nowMs < entry.cachedAtMs ? undefined : entry;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
