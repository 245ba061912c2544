import assert from 'node:assert/strict';
import type { LoadResult } from '../../../src/bench/load-types';
import { combineRounds, type MeasuredRow } from '../../../src/bench/rounds';

function measured(target: string, round: number, requestsPerSecond: number, mode: MeasuredRow['mode'] = 'closed-loop', p99Ms = 1): MeasuredRow {
  const result: LoadResult = { generator: 'h2-frames', requests: requestsPerSecond, errors: 0, lateAnswers: 0, seconds: 1, requestsPerSecond, p50Ms: p99Ms / 2, p99Ms, p999Ms: p99Ms };
  return { target, workload: 'uniform_1k', mode, round, result, serverCpuUsPerCall: round };
}

describe('combining bench rounds', () => {
  it("reports the median of each round's ratio to the no-op of the same round, with the figures of that round and the range", () => {
    // The machine was twice as fast in round 2: both servers doubled, the ratio did not move much.
    const rows = combineRounds([
      measured('no-op', 1, 1000), measured('memory', 1, 800),
      measured('no-op', 2, 2000), measured('memory', 2, 1900),
      measured('no-op', 3, 1000), measured('memory', 3, 850),
    ]);
    const memory = rows.find((row) => row.target === 'memory');
    assert.equal(memory?.vsNoop, 0.85);
    assert.equal(memory?.result.requestsPerSecond, 850, 'the figures are those of the median round');
    assert.equal(memory?.serverCpuUsPerCall, 3);
    assert.deepEqual(memory?.vsNoopRange, { min: 0.8, max: 0.95 });
    assert.equal(memory?.rounds, 3);
    const noop = rows.find((row) => row.target === 'no-op');
    assert.equal(noop?.result.requestsPerSecond, 1000, "the no-op's own median round");
    assert.equal(noop?.vsNoop, 1);
  });

  it('compares p99 for latency modes, and gives no range for one round', () => {
    const rows = combineRounds([measured('no-op', 1, 500, 'fixed-rate', 10), measured('redis x3', 1, 500, 'fixed-rate', 15)]);
    const redis = rows.find((row) => row.target === 'redis x3');
    assert.equal(redis?.vsNoop, 1.5);
    assert.equal(redis?.vsNoopRange, undefined);
    assert.equal(redis?.rounds, 1);
  });

  it('keeps an even count of rounds to a measured round (the lower middle), not an average', () => {
    const rows = combineRounds([measured('no-op', 1, 1000), measured('memory', 1, 700), measured('no-op', 2, 1000), measured('memory', 2, 900)]);
    assert.equal(rows.find((row) => row.target === 'memory')?.vsNoop, 0.7);
  });
});
