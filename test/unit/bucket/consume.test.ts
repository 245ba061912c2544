import assert from 'node:assert/strict';
import fc from 'fast-check';
import { consume, stateToStore, storedState } from '../../../src/bucket/consume';
import type { BucketState, Limit } from '../../../src/core';

const limitArb: fc.Arbitrary<Limit> = fc.record({
  requestsPerUnit: fc.integer({ min: 1, max: 1000 }),
  unit: fc.constantFrom('second', 'minute', 'hour'),
  capacity: fc.integer({ min: 1, max: 1000 }),
  algorithm: fc.constantFrom('token_bucket', 'fixed_window'),
});

const stateArb: fc.Arbitrary<BucketState | undefined> = fc.option(
  fc.record({ tokens: fc.double({ min: 0, max: 1000, noNaN: true }), updatedAtMs: fc.integer({ min: 0, max: 10_000_000 }) }),
  { nil: undefined },
);

describe('what a request stores', () => {
  it('keeps an admitted request’s states, a denying fixed window’s count, and nothing of a limit another limit overruled', () => {
    const tokenBucket: Limit = { requestsPerUnit: 10, unit: 'minute', capacity: 10, algorithm: 'token_bucket' };
    const fixedWindow: Limit = { ...tokenBucket, algorithm: 'fixed_window' };
    const full = consume(undefined, tokenBucket, 1, 0);
    assert.notEqual(stateToStore(full, true), undefined);
    assert.equal(stateToStore(full, false), undefined, 'admitted here, denied by another limit: nothing taken');
    const overWindow = consume({ tokens: 0, updatedAtMs: 0 }, fixedWindow, 1, 0);
    assert.equal(overWindow.allowed, false);
    assert.notEqual(stateToStore(overWindow, false), undefined, 'the window counts the denied hit');
  });

  it('tells from the verdicts alone exactly when a state was stored (what the engine counts as its own write)', () => {
    fc.assert(
      fc.property(stateArb, limitArb, fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 10_000_000 }), fc.boolean(), (state, limit, hits, nowMs, othersAdmit) => {
        const decision = consume(state, limit, hits, nowMs);
        const admitted = decision.allowed && othersAdmit;
        assert.equal(storedState(limit.algorithm, hits, decision.allowed, admitted), stateToStore(decision, admitted) !== undefined);
      }),
      { numRuns: 2000 },
    );
  });
});
