import assert from 'node:assert/strict';
import { RateLimitRequest } from '../../../src/generated/envoy/service/ratelimit/v3/rls';
import { DEFAULT_WORKLOADS, WORKLOAD_CALLS, workloadFrames } from '../../../src/bench/workloads';

function valueAt(frame: Buffer): string {
  return RateLimitRequest.decode(frame.subarray(5)).descriptors[0]?.entries[0]?.value ?? '';
}

describe('bench workloads', () => {
  it('distinct_1m sends a million different keys, one call each, and is not run unless asked for', () => {
    const frames = workloadFrames('distinct_1m');
    assert.equal(frames.distinct, 1_000_000);
    assert.equal(WORKLOAD_CALLS.distinct_1m, 1_000_000);
    assert.notEqual(valueAt(frames.frameAt(0)), valueAt(frames.frameAt(1)));
    assert.equal(valueAt(frames.frameAt(999_999)), 'd999999');
    assert.ok(!DEFAULT_WORKLOADS.includes('distinct_1m'));
  });

  it('frames are gRPC length-prefixed RateLimitRequests in domain bench', () => {
    for (const name of DEFAULT_WORKLOADS) {
      const frame = workloadFrames(name).frameAt(0);
      assert.equal(frame.readUInt8(0), 0, 'not compressed');
      assert.equal(frame.readUInt32BE(1), frame.length - 5);
      assert.equal(RateLimitRequest.decode(frame.subarray(5)).domain, 'bench');
    }
  });
});
