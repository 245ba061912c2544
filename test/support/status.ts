import assert from 'node:assert/strict';
import {
  RateLimitResponse_Code as Code,
  RateLimitResponse_RateLimit_Unit as Unit,
  type RateLimitResponse_DescriptorStatus,
} from '../../src/generated/envoy/service/ratelimit/v3/rls';

export { Code, Unit };

/** OK(N, UNIT, rem) of the scenarios: a limited descriptor within its limit. */
export function assertOk(status: RateLimitResponse_DescriptorStatus | undefined, requestsPerUnit: number, unit: Unit, remaining: number): void {
  assert.ok(status, 'status present');
  assert.equal(status.code, Code.OK, 'code');
  assert.equal(status.current_limit?.requests_per_unit, requestsPerUnit, 'requests_per_unit');
  assert.equal(status.current_limit?.unit, unit, 'unit');
  assert.equal(status.limit_remaining, remaining, 'limit_remaining');
  assert.ok(status.duration_until_reset !== undefined, 'duration_until_reset present');
}

/** OVER(N, UNIT): over limit, nothing remaining. */
export function assertOver(status: RateLimitResponse_DescriptorStatus | undefined, requestsPerUnit: number, unit: Unit): void {
  assert.ok(status, 'status present');
  assert.equal(status.code, Code.OVER_LIMIT, 'code');
  assert.equal(status.current_limit?.requests_per_unit, requestsPerUnit, 'requests_per_unit');
  assert.equal(status.current_limit?.unit, unit, 'unit');
  assert.equal(status.limit_remaining, 0, 'limit_remaining');
}

/** NOLIMIT: OK with no current limit and no reset. */
export function assertNoLimit(status: RateLimitResponse_DescriptorStatus | undefined): void {
  assert.deepEqual(
    { code: status?.code, current_limit: status?.current_limit, limit_remaining: status?.limit_remaining, duration: status?.duration_until_reset },
    { code: Code.OK, current_limit: undefined, limit_remaining: 0, duration: undefined },
  );
}

/** UNL: an unlimited rule. */
export function assertUnlimited(status: RateLimitResponse_DescriptorStatus | undefined): void {
  assert.deepEqual(
    { code: status?.code, current_limit: status?.current_limit, limit_remaining: status?.limit_remaining },
    { code: Code.OK, current_limit: undefined, limit_remaining: 4294967295 },
  );
}

export function durationMs(status: RateLimitResponse_DescriptorStatus | undefined): number {
  const duration = status?.duration_until_reset;
  assert.ok(duration, 'duration_until_reset present');
  return duration.seconds * 1000 + duration.nanos / 1e6;
}
