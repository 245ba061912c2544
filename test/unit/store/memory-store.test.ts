import assert from 'node:assert/strict';
import { MemoryBucketStore } from '../../../src/store/memory-store';
import { describeStoreContract } from '../../contract/store.contract';
import { FakeClock } from '../../support/fake-clock';

describeStoreContract('memory', () => {
  const clock = new FakeClock();
  return { clock, store: new MemoryBucketStore({ clock, maxBuckets: 1000 }), passTime: async (ms) => clock.advance(ms) };
});

describe('MemoryBucketStore', () => {
  const write = (clock: FakeClock, key: string, ttlMs = 60_000) => ({
    key,
    expectedVersion: 0,
    state: { tokens: 1, updatedAtMs: clock.nowMs() },
    expireAtMs: clock.nowMs() + ttlMs,
  });
  const commitWrites = (store: MemoryBucketStore, clock: FakeClock, ...writes: ReturnType<typeof write>[]) =>
    store.commit(writes.map((one) => ({ writes: [one], requests: [] })), clock.nowMs());

  it('evicts the least recently written buckets beyond its maximum', async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore({ clock, maxBuckets: 3 });
    for (const key of ['a', 'b', 'c']) await commitWrites(store, clock, write(clock, key));
    await commitWrites(store, clock, { ...write(clock, 'a'), expectedVersion: 1 });
    await commitWrites(store, clock, write(clock, 'd'));
    assert.equal(store.size, 3);
    assert.equal(store.evictions, 1);
    const [a, b] = await store.load(['a', 'b']);
    assert.notEqual(a, undefined, 'a was rewritten, so b was the oldest');
    assert.equal(b, undefined);
  });

  it('stays bounded under a flood of distinct keys', async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore({ clock, maxBuckets: 1000 });
    for (let index = 0; index < 20_000; index++) await commitWrites(store, clock, write(clock, `flood-${index}`));
    assert.equal(store.size, 1000);
  });

  it('keeps about its live records, not its maximum, under distinct keys that expire at once', async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore({ clock, maxBuckets: 1_000_000 });
    for (let index = 0; index < 50_000; index++) {
      await commitWrites(store, clock, write(clock, `gone-${index}`, 1));
      clock.advance(1);
    }
    assert.ok(store.size <= 10_002, `${store.size} records kept, all but the last expired`);
    assert.equal(store.evictions, 0, 'dropped as expired, not evicted');
  });

  it('sweeps expired records without being asked for them', async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore({ clock, maxBuckets: 100 });
    await commitWrites(store, clock, write(clock, 'short', 10), write(clock, 'long', 10_000));
    clock.advance(10);
    assert.equal(store.sweepExpired(), 1);
    assert.equal(store.size, 1);
  });

  it('refuses a maximum that is not a positive integer', () => {
    assert.throws(() => new MemoryBucketStore({ clock: new FakeClock(), maxBuckets: 0 }), RangeError);
  });
});
