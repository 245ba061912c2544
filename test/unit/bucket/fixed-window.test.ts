import assert from 'node:assert/strict';
import fc from 'fast-check';
import { consumeFixedWindow } from '../../../src/bucket/fixed-window';
import type { BucketState, Limit } from '../../../src/core';

const perMinute = (requestsPerUnit: number): Limit => ({ requestsPerUnit, unit: 'minute', capacity: requestsPerUnit, algorithm: 'fixed_window' });

function run(limit: Limit, calls: readonly { nowMs: number; hits: number }[]) {
  let state: BucketState | undefined;
  return calls.map(({ nowMs, hits }) => {
    const decision = consumeFixedWindow(state, limit, hits, nowMs);
    if (decision.next !== undefined) state = decision.next;
    return decision;
  });
}

describe('fixed window', () => {
  it('reports the reset as window - now % window whole seconds (unix 2222 on a minute → 58 s)', () => {
    const decision = consumeFixedWindow(undefined, perMinute(10), 1, 2222_000);
    assert.equal(decision.resetAfterMs, 58_000);
    assert.equal(consumeFixedWindow(undefined, perMinute(10), 1, 2222_900).resetAfterMs, 58_000);
  });

  it('counts denied hits, as the reference does, so a large addend uses up the window', () => {
    const [first, second, third] = run(perMinute(20), [
      { nowMs: 0, hits: 19 },
      { nowMs: 1, hits: 3 },
      { nowMs: 2, hits: 1 },
    ]);
    assert.equal(first?.remaining, 1);
    assert.equal(second?.allowed, false);
    assert.equal(third?.allowed, false, 'count is 22 after the denied addend, so 23 > 20');
  });

  it('rolls over at the epoch-aligned window boundary', () => {
    const decisions = run(perMinute(1), [
      { nowMs: 60_000, hits: 1 },
      { nowMs: 119_999, hits: 1 },
      { nowMs: 120_000, hits: 1 },
    ]);
    assert.deepEqual(decisions.map((decision) => decision.allowed), [true, false, true]);
    assert.equal(decisions[2]?.remaining, 0);
  });

  it('checks the current count without adding to it when hits is 0', () => {
    const [, peek, next] = run(perMinute(10), [
      { nowMs: 0, hits: 4 },
      { nowMs: 1, hits: 0 },
      { nowMs: 2, hits: 1 },
    ]);
    assert.equal(peek?.remaining, 6);
    assert.equal(peek?.next, undefined);
    assert.equal(next?.remaining, 5);
  });

  it('admits no more than requests_per_unit within any one window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 30 }),
        fc.array(fc.record({ stepMs: fc.integer({ min: 0, max: 20_000 }), hits: fc.integer({ min: 0, max: 10 }) }), { maxLength: 200 }),
        (requestsPerUnit, steps) => {
          const limit = perMinute(requestsPerUnit);
          let nowMs = 0;
          const calls = steps.map(({ stepMs, hits }) => ({ nowMs: (nowMs += stepMs), hits }));
          const admittedPerWindow = new Map<number, number>();
          run(limit, calls).forEach((decision, index) => {
            const call = calls[index] as { nowMs: number; hits: number };
            const window = Math.floor(call.nowMs / 60_000);
            if (decision.allowed) admittedPerWindow.set(window, (admittedPerWindow.get(window) ?? 0) + call.hits);
          });
          for (const admitted of admittedPerWindow.values()) assert.ok(admitted <= requestsPerUnit);
        },
      ),
      { numRuns: 300 },
    );
  });
});
