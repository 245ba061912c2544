import type { BucketStore } from '../../src/core';

/** A store that forwards to `inner` except for the operations given, to stage failures and races. */
export function delegatingStore(inner: BucketStore, replaced: Partial<BucketStore>): BucketStore {
  return {
    load: replaced.load ?? ((keys) => inner.load(keys)),
    commit: replaced.commit ?? ((groups, nowMs, options) => inner.commit(groups, nowMs, options)),
    ping: replaced.ping ?? (() => inner.ping()),
    close: replaced.close ?? (() => inner.close()),
    placement: replaced.placement ?? ((key) => inner.placement(key)),
    remove: replaced.remove ?? ((keys) => inner.remove(keys)),
  };
}
