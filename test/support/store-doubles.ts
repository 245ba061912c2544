import type { BucketStore } from '../../src/core';

/** A store that forwards to `inner` except for the operations given, to stage failures and races. */
export function delegatingStore(inner: BucketStore, replaced: Partial<BucketStore>): BucketStore {
  return {
    load: replaced.load ?? ((keys) => inner.load(keys)),
    compareAndSet: replaced.compareAndSet ?? ((writes) => inner.compareAndSet(writes)),
    applyOnShard: replaced.applyOnShard ?? ((requests, nowMs) => inner.applyOnShard(requests, nowMs)),
    ping: replaced.ping ?? (() => inner.ping()),
    close: replaced.close ?? (() => inner.close()),
  };
}
