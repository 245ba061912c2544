import assert from 'node:assert/strict';
import type { BucketStore, BucketWrite, Limit } from '../../src/core';

const PER_MINUTE_10: Limit = { requestsPerUnit: 10, unit: 'minute', capacity: 10, algorithm: 'token_bucket' };
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
    /** A group of plain writes; if a version moved, the store decides `hits` against `limit` instead. */
    const commit = (writes: BucketWrite[], hits = 1, limit: Limit = PER_MINUTE_10) =>
      subject.store.commit([{ writes, requests: [{ hits, limits: writes.map(({ key }) => ({ key, limit })) }] }], subject.clock.nowMs());

    it('loads absent buckets as undefined, in the order asked', async () => {
      await commit([write('b', 0, 5)]);
      const [a, b] = await subject.store.load(['a', 'b']);
      assert.equal(a, undefined);
      assert.equal(b?.state.tokens, 5);
    });

    it('creates a record with version 1 when the expected version is 0', async () => {
      assert.deepEqual(await commit([write('k', 0, 7)]), [{ kind: 'written' }]);
      const [record] = await subject.store.load(['k']);
      assert.equal(record?.version, 1);
      assert.deepEqual(record?.state, { tokens: 7, updatedAtMs: subject.clock.nowMs() });
    });

    it('bumps the version on each applied write', async () => {
      await commit([write('k', 0, 7)]);
      await commit([write('k', 1, 6)]);
      const [record] = await subject.store.load(['k']);
      assert.equal(record?.version, 2);
      assert.equal(record?.state.tokens, 6);
    });

    it('decides the request itself when a version moved, from the current record', async () => {
      await commit([write('k', 0, 7)]);
      const [outcome] = await commit([write('k', 0, 3)], 2);
      assert.equal(outcome?.kind, 'decided');
      assert.ok(outcome?.kind === 'decided');
      const [verdict] = outcome.results[0] ?? [];
      assert.equal(verdict?.allowed, true);
      assert.equal(verdict?.remaining, 5, 'took 2 from the stored 7, not from the stale write');
      assert.equal(verdict?.record?.version, 2);
      assert.equal((await subject.store.load(['k']))[0]?.state.tokens, 5);
    });

    it('denies without consuming when it decides a request the bucket cannot cover', async () => {
      await commit([write('k', 0, 1)]);
      const [outcome] = await commit([write('k', 0, 0)], 3);
      assert.ok(outcome?.kind === 'decided');
      assert.equal(outcome.results[0]?.[0]?.allowed, false);
      assert.equal((await subject.store.load(['k']))[0]?.version, 1, 'nothing written');
    });

    it('commits the limits of one rule (one group) all together or not at all', async () => {
      await commit([write('d|k=v#second', 0, 5)]);
      const [outcome] = await commit([write('d|k=v#day', 0, 4), write('d|k=v#second', 0, 0)], 6);
      assert.ok(outcome?.kind === 'decided');
      assert.deepEqual(outcome.results[0]?.map((verdict) => verdict.allowed), [true, false], '6 hits fit the fresh day bucket (10) only');
      const [second, day] = await subject.store.load(['d|k=v#second', 'd|k=v#day']);
      assert.equal(second?.state.tokens, 5);
      assert.equal(day, undefined, 'the admitting limit consumed nothing either');
    });

    it('decides a group sent without writes (the caller had no copy of its records)', async () => {
      await commit([write('k', 0, 7)]);
      const [outcome] = await subject.store.commit([{ writes: [], requests: [{ hits: 3, limits: [{ key: 'k', limit: PER_MINUTE_10 }] }] }], subject.clock.nowMs());
      assert.ok(outcome?.kind === 'decided');
      assert.equal(outcome.results[0]?.[0]?.remaining, 4);
    });

    it('commits groups independently', async () => {
      await commit([write('a|x=1#minute', 0, 5)]);
      const outcomes = await subject.store.commit(
        [
          { writes: [write('a|x=1#minute', 0, 4)], requests: [{ hits: 1, limits: [{ key: 'a|x=1#minute', limit: PER_MINUTE_10 }] }] },
          { writes: [write('b|y=2#minute', 0, 9)], requests: [{ hits: 1, limits: [{ key: 'b|y=2#minute', limit: PER_MINUTE_10 }] }] },
        ],
        subject.clock.nowMs(),
      );
      assert.deepEqual(outcomes.map((outcome) => outcome.kind), ['decided', 'written']);
    });

    it('forgets a record once it expires', async () => {
      await commit([write('k', 0, 7, 400)]);
      await subject.passTime(100);
      assert.notEqual((await subject.store.load(['k']))[0], undefined);
      await subject.passTime(400);
      assert.equal((await subject.store.load(['k']))[0], undefined);
      assert.deepEqual(await commit([write('k', 0, 4)]), [{ kind: 'written' }], 'an expired record counts as absent');
    });

    it('answers ping', async () => {
      await subject.store.ping();
    });
  });
}
