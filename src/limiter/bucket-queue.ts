/**
 * Serialises work on the same buckets within this process, so that concurrent requests for one
 * hot bucket wait behind the write in flight instead of racing it and losing the conditional
 * write (across processes the version check still arbitrates).
 *
 * A task is queued on all of its keys in one synchronous step, so it only ever waits for tasks
 * queued before it: the wait-for graph follows queue order and cannot form a cycle.
 */
export class BucketQueue {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(keys: readonly string[], task: () => Promise<T>): Promise<T> {
    // Most calls find their buckets idle: they wait for nothing and allocate no waiting list.
    let predecessors: Promise<void>[] | undefined;
    for (const key of keys) {
      const tail = this.tails.get(key);
      if (tail !== undefined) (predecessors ??= []).push(tail);
    }
    let release = (): void => {};
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    for (const key of keys) this.tails.set(key, done);
    try {
      if (predecessors !== undefined) await Promise.all(predecessors);
      return await task();
    } finally {
      release();
      for (const key of keys) if (this.tails.get(key) === done) this.tails.delete(key);
    }
  }

  /** Whether work is queued or running on any of `keys`. */
  busy(keys: readonly string[]): boolean {
    return keys.some((key) => this.tails.has(key));
  }

  /** Keys with work queued or running (for tests and gauges). */
  get activeKeys(): number {
    return this.tails.size;
  }
}
