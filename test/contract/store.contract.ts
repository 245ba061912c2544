import assert from 'node:assert/strict';
import type { BucketStore } from '../../src/core';
import { FakeClock } from '../support/fake-clock';

export interface StoreUnderTest {
  readonly store: BucketStore;
  readonly clock: FakeClock;
  /** Lets time pass for the store: the fake clock alone, or real time too for a store that expires on its own clock. */
  passTime(ms: number): Promise<void>;
}

/**
 * The version-stamped contract every BucketStore must keep, written once and run against each
 * implementation (memory now; Redis shards next).
 */
export function describeStoreContract(name: string, makeStore: () => Promise<StoreUnderTest> | StoreUnderTest): void {
  describe(`BucketStore contract: ${name}`, () => {
    let subject: StoreUnderTest;
    beforeEach(async () => {
      subject = await makeStore();
    });
    afterEach(async () => {
      await subject.store.close();
    });

    const write = (key: string, expectedVersion: number, tokens: number, ttlMs = 60_000) => ({
      key,
      expectedVersion,
      state: { tokens, updatedAtMs: subject.clock.nowMs() },
      expireAtMs: subject.clock.nowMs() + ttlMs,
    });

    it('loads absent buckets as undefined, in the order asked', async () => {
      await subject.store.compareAndSet([write('b', 0, 5)]);
      const [a, b] = await subject.store.load(['a', 'b']);
      assert.equal(a, undefined);
      assert.equal(b?.state.tokens, 5);
    });

    it('creates a record with version 1 when the expected version is 0', async () => {
      assert.equal((await subject.store.compareAndSet([write('k', 0, 7)])).refused.size, 0);
      const [record] = await subject.store.load(['k']);
      assert.equal(record?.version, 1);
      assert.deepEqual(record?.state, { tokens: 7, updatedAtMs: subject.clock.nowMs() });
    });

    it('bumps the version on each applied write', async () => {
      await subject.store.compareAndSet([write('k', 0, 7)]);
      await subject.store.compareAndSet([write('k', 1, 6)]);
      const [record] = await subject.store.load(['k']);
      assert.equal(record?.version, 2);
      assert.equal(record?.state.tokens, 6);
    });

    it('refuses a stale version and returns the current record', async () => {
      await subject.store.compareAndSet([write('k', 0, 7)]);
      const { refused } = await subject.store.compareAndSet([write('k', 0, 3)]);
      assert.equal(refused.get('k')?.version, 1);
      assert.equal(refused.get('k')?.state.tokens, 7);
      const [record] = await subject.store.load(['k']);
      assert.equal(record?.state.tokens, 7, 'a refused write changes nothing');
    });

    it('applies the limits of one rule (one group) all together or not at all', async () => {
      await subject.store.compareAndSet([write('d|k=v#second', 0, 1)]);
      const { refused } = await subject.store.compareAndSet([write('d|k=v#day', 0, 9), write('d|k=v#second', 0, 9)]);
      assert.deepEqual([...refused.keys()].sort(), ['d|k=v#day', 'd|k=v#second']);
      assert.equal(refused.get('d|k=v#day'), undefined, 'refused with its current (absent) record');
      const [second, day] = await subject.store.load(['d|k=v#second', 'd|k=v#day']);
      assert.equal(second?.state.tokens, 1);
      assert.equal(day, undefined, 'the write without a conflict was not applied either');
    });

    it('forgets a record once it expires', async () => {
      await subject.store.compareAndSet([write('k', 0, 7, 400)]);
      await subject.passTime(100);
      assert.notEqual((await subject.store.load(['k']))[0], undefined);
      await subject.passTime(400);
      assert.equal((await subject.store.load(['k']))[0], undefined);
      assert.equal((await subject.store.compareAndSet([write('k', 0, 4)])).refused.size, 0, 'an expired record counts as absent');
    });

    it('answers ping', async () => {
      await subject.store.ping();
    });
  });
}
