import type { BucketStore } from '../../src/core';

/** A store that forwards to `inner` except for the operations given, to stage failures and races. */
export function delegatingStore(inner: BucketStore, replaced: Partial<BucketStore>): BucketStore {
  return {
    load: replaced.load ?? ((keys) => inner.load(keys)),
    commit: replaced.commit ?? ((groups, nowMs) => inner.commit(groups, nowMs)),
    ping: replaced.ping ?? (() => inner.ping()),
    close: replaced.close ?? (() => inner.close()),
  };
}
