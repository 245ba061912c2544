import assert from 'node:assert/strict';
import fc from 'fast-check';
import { consumeTokenBucket, RECORD_MIN_LIFETIME_MS } from '../../../src/bucket/token-bucket';
import { UNIT_SECONDS, type BucketState, type Limit } from '../../../src/core';

const perSecond = (requestsPerUnit: number, capacity = requestsPerUnit): Limit => ({
  requestsPerUnit,
  unit: 'second',
  capacity,
  algorithm: 'token_bucket',
});

describe('token bucket', () => {
  it('starts full and takes the hits from the capacity', () => {
    const decision = consumeTokenBucket(undefined, perSecond(10, 20), 3, 0);
    assert.equal(decision.allowed, true);
    assert.equal(decision.remaining, 17);
    assert.deepEqual(decision.next, { tokens: 17, updatedAtMs: 0 });
    assert.equal(decision.resetAfterMs, 300);
    assert.equal(decision.expireAtMs, RECORD_MIN_LIFETIME_MS, 'full again after 300 ms, the record is kept for its minimum lifetime');
  });

  it('keeps a record until its bucket is full again when that is after the minimum lifetime', () => {
    const slow = perSecond(1, 20);
    const decision = consumeTokenBucket(undefined, slow, 3, 5000);
    assert.equal(decision.resetAfterMs, 3000);
    assert.equal(decision.expireAtMs, 8000);
  });

  it('refills at requests_per_unit per unit, never above capacity', () => {
    const limit = perSecond(10, 20);
    const state: BucketState = { tokens: 0, updatedAtMs: 1000 };
    assert.equal(consumeTokenBucket(state, limit, 1, 1500).remaining, 4);
    assert.equal(consumeTokenBucket(state, limit, 1, 60_000).remaining, 19);
  });

  it('denies without draining the bucket when the hits exceed the tokens', () => {
    const state: BucketState = { tokens: 2, updatedAtMs: 0 };
    const decision = consumeTokenBucket(state, perSecond(10), 3, 0);
    assert.equal(decision.allowed, false);
    assert.equal(decision.remaining, 2);
    assert.equal(decision.next, undefined);
  });

  it('checks without consuming when hits is 0, denying only when not one whole token is left', () => {
    const peekFull = consumeTokenBucket({ tokens: 1, updatedAtMs: 0 }, perSecond(10), 0, 0);
    assert.equal(peekFull.allowed, true);
    assert.equal(peekFull.next, undefined);
    const peekEmpty = consumeTokenBucket({ tokens: 0.5, updatedAtMs: 0 }, perSecond(10), 0, 0);
    assert.equal(peekEmpty.allowed, false);
  });

  it('never mints tokens when the clock runs behind the record', () => {
    const state: BucketState = { tokens: 0, updatedAtMs: 10_000 };
    const decision = consumeTokenBucket(state, perSecond(10), 1, 5_000);
    assert.equal(decision.allowed, false);
    const later = consumeTokenBucket({ tokens: 1, updatedAtMs: 10_000 }, perSecond(10), 1, 5_000);
    assert.equal(later.next?.updatedAtMs, 10_000, 'updatedAtMs must not move backwards');
  });

  it('reports the time until full without float noise (1 token at 1/hour is exactly 3600 s)', () => {
    const limit: Limit = { requestsPerUnit: 1, unit: 'hour', capacity: 1, algorithm: 'token_bucket' };
    assert.equal(consumeTokenBucket(undefined, limit, 1, 0).resetAfterMs, 3_600_000);
  });

  it('denies everything when requests_per_unit is 0', () => {
    const decision = consumeTokenBucket(undefined, perSecond(0, 0), 1, 0);
    assert.equal(decision.allowed, false);
    assert.equal(decision.remaining, 0);
  });

  it('admits no more than C + R·T hits over any sequence of requests and clock steps', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 50 }),
        fc.constantFrom('second', 'minute', 'hour') as fc.Arbitrary<Limit['unit']>,
        fc.array(fc.record({ stepMs: fc.integer({ min: -500, max: 5_000 }), hits: fc.integer({ min: 0, max: 20 }) }), { maxLength: 200 }),
        (requestsPerUnit, capacityExtra, unit, steps) => {
          const capacity = requestsPerUnit === 0 ? 0 : requestsPerUnit + capacityExtra;
          const limit: Limit = { requestsPerUnit, unit, capacity, algorithm: 'token_bucket' };
          const unitMs = UNIT_SECONDS[unit] * 1000;
          let state: BucketState | undefined;
          let nowMs = 1_000_000;
          let elapsedMs = 0;
          let admitted = 0;
          for (const { stepMs, hits } of steps) {
            // Negative steps model a clock that jumps back; elapsed time only counts forward.
            nowMs += stepMs;
            elapsedMs += Math.max(0, stepMs);
            const decision = consumeTokenBucket(state, limit, hits, nowMs);
            if (decision.allowed) admitted += hits;
            if (decision.next !== undefined) state = decision.next;
            assert.ok(decision.remaining >= 0);
          }
          const bound = capacity + (requestsPerUnit * elapsedMs) / unitMs;
          assert.ok(admitted <= bound + 1e-6, `admitted ${admitted} > bound ${bound}`);
        },
      ),
      { numRuns: 300 },
    );
  });
});
