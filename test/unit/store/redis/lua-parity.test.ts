import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pino } from 'pino';
import type { ApplyRequest, BucketState, Limit, VersionedBucket } from '../../../../src/core';
import { TIME_UNITS } from '../../../../src/core';
import { applyInPlace } from '../../../../src/bucket/apply-requests';
import { connectShards } from '../../../../src/store/redis/connect-shards';
import type { ShardClient } from '../../../../src/store/redis/redis-client';
import { RedisShardStore } from '../../../../src/store/redis/redis-shard-store';
import { FakeClock } from '../../../support/fake-clock';
import { RedisServer } from '../../../support/redis-server';

const limitArbitrary: fc.Arbitrary<Limit> = fc
  .record({
    requestsPerUnit: fc.integer({ min: 0, max: 1000 }),
    unit: fc.constantFrom(...TIME_UNITS),
    extraCapacity: fc.integer({ min: 0, max: 500 }),
    algorithm: fc.constantFrom('token_bucket' as const, 'fixed_window' as const),
  })
  .map(({ requestsPerUnit, unit, extraCapacity, algorithm }) => ({
    requestsPerUnit,
    unit,
    algorithm,
    capacity: algorithm === 'fixed_window' || requestsPerUnit === 0 ? requestsPerUnit : requestsPerUnit + extraCapacity,
  }));

/** bucket-commit.lua must decide exactly as src/bucket does, state by state. */
describe('bucket-commit.lua parity with the TypeScript bucket math', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let client: ShardClient;
  let store: RedisShardStore;
  before(async () => {
    server = await RedisServer.start();
    const clients = await connectShards({ shards: [{ name: 'only', url: server.url() }], commandTimeoutMs: 1000, logger: pino({ level: 'silent' }) });
    client = clients.get('only') as ShardClient;
    store = new RedisShardStore({ shards: clients, clock: new FakeClock(Date.now()), keyPrefix: 'parity:' });
  });
  after(async () => {
    await store.close();
    await server.kill();
  });

  it('gives the same verdicts and records for random states, limits, hits and clocks', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ limit: limitArbitrary, tokens: fc.option(fc.double({ min: -50, max: 1500, noNaN: true }), { nil: undefined }), ageMs: fc.integer({ min: -5000, max: 100_000_000 }) }), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }),
        async (limits, hits, nowMs) => {
          const keys = limits.map((_, index) => `d|k=v#${index}`);
          const initial = new Map<string, VersionedBucket | undefined>();
          await client.flushall();
          for (const [index, spec] of limits.entries()) {
            const key = keys[index] as string;
            if (spec.tokens === undefined) continue;
            const state: BucketState = {
              tokens: spec.limit.algorithm === 'fixed_window' ? Math.round(spec.tokens) : spec.tokens,
              updatedAtMs: spec.limit.algorithm === 'fixed_window' ? Math.floor((nowMs - spec.ageMs) / 1000) * 1000 : nowMs - spec.ageMs,
            };
            initial.set(key, { state, version: 3 });
            await client.set(`parity:${key}`, `3:${String(state.tokens)}:${state.updatedAtMs}`, 'PX', 600_000);
          }
          const request: ApplyRequest = { hits, limits: limits.map((spec, index) => ({ key: keys[index] as string, limit: spec.limit })) };
          // A write expecting a version no record has forces the shard to decide with its own math.
          const stale = { key: keys[0] as string, expectedVersion: 999, state: { tokens: 0, updatedAtMs: nowMs }, expireAtMs: nowMs + 1000 };
          const [outcome] = await store.commit([{ writes: [stale], requests: [request] }], nowMs);
          assert.ok(outcome?.kind === 'decided');
          const [fromLua] = outcome.results;
          const memory = new Map(initial);
          const [fromTs] = applyInPlace(
            { get: (key) => memory.get(key), set: (key, state, version) => memory.set(key, { state, version }) },
            [request],
            nowMs,
          );
          assert.ok(fromLua && fromTs);
          fromTs.forEach((expected, index) => {
            const actual = fromLua[index];
            assert.ok(actual, 'a verdict per limit');
            assert.deepEqual([actual.allowed, actual.remaining, actual.resetAfterMs], [expected.allowed, expected.remaining, expected.resetAfterMs]);
            assert.equal(actual.record?.version, expected.record?.version);
            if (expected.record !== undefined && actual.record !== undefined) {
              assert.ok(Math.abs(actual.record.state.tokens - expected.record.state.tokens) < 1e-9, 'same tokens');
              assert.equal(actual.record.state.updatedAtMs, expected.record.state.updatedAtMs);
            }
          });
        },
      ),
      { numRuns: 400 },
    );
  });
});
