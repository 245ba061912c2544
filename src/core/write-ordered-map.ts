/**
 * A Map that also knows the order in which its entries were last written, and gives up the
 * oldest in O(1) amortised. Every bounded map of ringlimit evicts with it.
 *
 * Why not a plain Map (which keeps insertion order): removing its first entry again and again
 * leaves deleted slots at the front that every new iterator walks past until V8 compacts the
 * table, so evicting one entry per write costs O(size): 37 µs per write at 100,000 entries.
 * Here the write order is a separate queue of (key, write number); an entry rewritten later
 * leaves a stale queue slot that is skipped once and dropped when the queue is compacted.
 */
export class WriteOrderedMap<K, V> {
  private readonly entries = new Map<K, { value: V; written: number }>();
  private order: { key: K; written: number }[] = [];
  private head = 0;
  private writes = 0;

  get size(): number {
    return this.entries.size;
  }

  get(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /** Adds or replaces `key`, which becomes the most recently written. */
  set(key: K, value: V): void {
    const written = ++this.writes;
    const entry = this.entries.get(key);
    if (entry === undefined) this.entries.set(key, { value, written });
    else {
      // In place: no new entry object, and the map's table is not touched.
      entry.value = value;
      entry.written = written;
    }
    this.order.push({ key, written });
    if (this.order.length - this.head > 2 * this.entries.size + 1024) this.compact();
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
    this.order = [];
    this.head = 0;
  }

  /** The value of the least recently written entry, left in place. */
  oldestValue(): V | undefined {
    while (this.head < this.order.length) {
      const { key, written } = this.order[this.head] as { key: K; written: number };
      const entry = this.entries.get(key);
      if (entry !== undefined && entry.written === written) return entry.value;
      this.head++;
    }
    this.releaseHead();
    return undefined;
  }

  /** Removes and returns the least recently written entry. */
  shift(): [K, V] | undefined {
    while (this.head < this.order.length) {
      const { key, written } = this.order[this.head++] as { key: K; written: number };
      const entry = this.entries.get(key);
      if (entry !== undefined && entry.written === written) {
        this.entries.delete(key);
        this.releaseHead();
        return [key, entry.value];
      }
    }
    this.releaseHead();
    return undefined;
  }

  /** Entries from the least recently written on (each once, as last written). */
  *oldestFirst(): Generator<[K, V]> {
    for (let index = this.head; index < this.order.length; index++) {
      const { key, written } = this.order[index] as { key: K; written: number };
      const entry = this.entries.get(key);
      if (entry !== undefined && entry.written === written) yield [key, entry.value];
    }
  }

  /** Keys in no particular order. */
  keys(): IterableIterator<K> {
    return this.entries.keys();
  }

  private releaseHead(): void {
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  /** Drops the queue slots of rewritten and deleted entries. */
  private compact(): void {
    this.order = this.order.slice(this.head).filter(({ key, written }) => this.entries.get(key)?.written === written);
    this.head = 0;
  }
}
