import assert from 'node:assert/strict';
import { d, RateLimitUnit, type DescriptorInput } from '../support/rls-client';
import { fixtureText } from '../support/rules';
import { assertNoLimit, assertOk, assertOver, Code, durationMs, Unit } from '../support/status';
import { startTestServer, type TestServer } from '../support/test-server';

/** Scenarios B, C, D and F of ENVOY_RATELIMIT_SCENARIOS.md, plus ringlimit's own additions. */
describe('ShouldRateLimit over gRPC: limits', () => {
  let server: TestServer;
  let unique = 0;
  before(async () => {
    server = await startTestServer({
      'scenarios.yaml': fixtureText('scenarios.yaml'),
      'replaces.yaml': fixtureText('replaces.yaml'),
      'basic.yaml': fixtureText('basic.yaml'),
    });
  });
  after(() => server.stop());

  /** A value no earlier call used, so each test starts from full buckets. */
  const fresh = (): string => `v${++unique}`;
  const call = (descriptors: DescriptorInput[], hitsAddend = 0) => server.client.call('another', descriptors, hitsAddend);

  describe('transitions', () => {
    it('counts 20/minute down to 0, then answers OVER_LIMIT (B14)', async () => {
      const value = fresh();
      for (let index = 1; index <= 25; index++) {
        const response = await call([d(['key2', value])]);
        if (index <= 20) assertOk(response.statuses[0], 20, Unit.MINUTE, 20 - index);
        else assertOver(response.statuses[0], 20, Unit.MINUTE);
        assert.equal(response.overall_code, index <= 20 ? Code.OK : Code.OVER_LIMIT);
      }
    });

    it('blocks everything with requests_per_unit 0 (B15)', async () => {
      assertOver((await call([d(['block', fresh()])])).statuses[0], 0, Unit.SECOND);
    });

    it('limits two descriptors independently and ORs them overall (B18)', async () => {
      const value = fresh();
      for (let index = 1; index <= 15; index++) {
        const response = await call([d(['key2', value]), d(['key3', value])]);
        assertOk(response.statuses[0], 20, Unit.MINUTE, 20 - index);
        if (index <= 10) assertOk(response.statuses[1], 10, Unit.HOUR, 10 - index);
        else assertOver(response.statuses[1], 10, Unit.HOUR);
        assert.equal(response.overall_code, index <= 10 ? Code.OK : Code.OVER_LIMIT);
      }
    });

    it('decides the same descriptor twice in one request one after the other (B19)', async () => {
      const value = fresh();
      const response = await server.client.call('test-domain', [d(['key3', value]), d(['key3', value])]);
      assertOk(response.statuses[0], 1, Unit.HOUR, 0);
      assertOver(response.statuses[1], 1, Unit.HOUR);
      assert.equal(response.overall_code, Code.OVER_LIMIT);
    });

    it('refills a token bucket continuously and reports the time until full', async () => {
      const value = fresh();
      for (let index = 0; index < 5; index++) await call([d(['burst', value])]);
      const empty = await call([d(['burst', value])]);
      assertOver(empty.statuses[0], 60, Unit.MINUTE);
      assert.equal(durationMs(empty.statuses[0]), 5000, 'capacity 5 at 1 token/s is full again in 5 s');
      server.clock.advance(1000);
      assertOk((await call([d(['burst', value])])).statuses[0], 60, Unit.MINUTE, 0);
      server.clock.advance(60_000);
      assertOk((await call([d(['burst', value])])).statuses[0], 60, Unit.MINUTE, 4);
    });
  });

  describe('fixed_window', () => {
    it('rolls over at the window boundary (B16)', async () => {
      const value = fresh();
      server.clock.set(Date.UTC(2026, 5, 1, 12, 0, 0, 500));
      assertOk((await call([d(['window_second', value])])).statuses[0], 1, Unit.SECOND, 0);
      assertOver((await call([d(['window_second', value])])).statuses[0], 1, Unit.SECOND);
      server.clock.advance(500);
      assertOk((await call([d(['window_second', value])])).statuses[0], 1, Unit.SECOND, 0);
    });

    it('reports duration_until_reset as window - now % window (B17: unix 2222 → 58 s)', async () => {
      server.clock.set(2222_000);
      const response = await call([d(['window_minute', fresh()])]);
      assert.deepEqual(response.statuses[0]?.duration_until_reset, { seconds: 58, nanos: 0 });
      server.clock.set(Date.UTC(2026, 5, 2, 10));
      const value = fresh();
      const first = durationMs((await call([d(['window_day', value])])).statuses[0]);
      server.clock.advance(2000);
      const second = durationMs((await call([d(['window_day', value])])).statuses[0]);
      assert.ok(second < first);
    });

    it('counts denied hits like the reference (C20 on a window)', async () => {
      const value = fresh();
      server.clock.set(Date.UTC(2026, 5, 3));
      assertOk((await call([d(['window_minute', value])], 9)).statuses[0], 10, Unit.MINUTE, 1);
      assertOver((await call([d(['window_minute', value])], 3)).statuses[0], 10, Unit.MINUTE);
      assertOver((await call([d(['window_minute', value])], 1)).statuses[0], 10, Unit.MINUTE);
    });
  });

  describe('hits_addend', () => {
    it('adds the request-level hits to every descriptor (C20)', async () => {
      const value = fresh();
      assertOk((await call([d(['per_second', value])], 3)).statuses[0], 20, Unit.SECOND, 17);
      for (let index = 0; index < 16; index++) await call([d(['per_second', value])]);
      assertOver((await call([d(['per_second', value])], 3)).statuses[0], 20, Unit.SECOND);
    });

    it('treats a request-level 0 as 1 (C21)', async () => {
      const value = fresh();
      assertOk((await call([d(['two_per_day', value])], 0)).statuses[0], 2, Unit.DAY, 1);
      assertOk((await call([d(['two_per_day', value])], 0)).statuses[0], 2, Unit.DAY, 0);
      assertOver((await call([d(['two_per_day', value])], 0)).statuses[0], 2, Unit.DAY);
    });

    it('lets a per-descriptor hits_addend win over the request one (C22)', async () => {
      const value = fresh();
      assertOk((await call([{ entries: [['per_second', value]], hits_addend: 1 }], 5)).statuses[0], 20, Unit.SECOND, 19);
    });

    it('checks without consuming with a per-descriptor hits_addend of 0 (C23)', async () => {
      const value = fresh();
      await call([d(['ten_per_hour', value])], 4);
      const peek = { entries: [['ten_per_hour', value]] as [string, string][], hits_addend: 0 };
      assertOk((await call([peek], 7)).statuses[0], 10, Unit.HOUR, 6);
      assertOk((await call([peek], 7)).statuses[0], 10, Unit.HOUR, 6);
      await call([d(['ten_per_hour', value])], 6);
      assertOver((await call([peek])).statuses[0], 10, Unit.HOUR);
    });

    it('admits an addend that exactly reaches the limit (C24)', async () => {
      const value = fresh();
      await call([d(['eight', value])], 5);
      assertOk((await call([d(['eight', value])], 2)).statuses[0], 8, Unit.SECOND, 1);
      assertOk((await call([d(['eight', value])], 1)).statuses[0], 8, Unit.SECOND, 0);
      assertOver((await call([d(['eight', value])], 1)).statuses[0], 8, Unit.SECOND);
    });
  });

  describe('rate_limits (several limits on one rule)', () => {
    it('admits only while every limit admits, reporting the one that denied', async () => {
      const value = fresh();
      const codes = [];
      for (let second = 0; second < 3; second++) {
        for (let index = 0; index < 2; index++) codes.push((await call([d(['multi', value])])).overall_code);
        server.clock.advance(1000);
      }
      assert.deepEqual(codes, [Code.OK, Code.OK, Code.OK, Code.OVER_LIMIT, Code.OVER_LIMIT, Code.OVER_LIMIT]);
      const denied = await call([d(['multi', value])]);
      assert.equal(denied.statuses[0]?.current_limit?.name, 'multi_day');
    });
  });

  describe('replaces, shadow and quota', () => {
    it('applies a named limit on its own (D27a)', async () => {
      const response = await server.client.call('example7', [d(['key_1', 'value_1'], ['user', 'bkthomps'])]);
      assertOk(response.statuses[0], 5, Unit.SECOND, 4);
      assert.equal(response.statuses[0]?.current_limit?.name, 'specific_limit');
    });

    it('switches a replaced limit off when the replacing rule is in the same request (D27b, D27c)', async () => {
      server.clock.set(Date.UTC(2026, 6, 1));
      const both = [d(['key_1', 'value_1'], ['user', 'bkthomps']), d(['key_2', 'value_2'], ['user', 'bkthomps'])];
      const first = await server.client.call('example7', both);
      assertNoLimit(first.statuses[0]);
      assertOk(first.statuses[1], 10, Unit.SECOND, 9);
      for (let index = 2; index <= 10; index++) await server.client.call('example7', both);
      const eleventh = await server.client.call('example7', both);
      assertNoLimit(eleventh.statuses[0]);
      assertOver(eleventh.statuses[1], 10, Unit.SECOND);
    });

    it('counts a shadow_mode rule but never denies it (D29)', async () => {
      const responses = [];
      for (let index = 0; index < 12; index++) responses.push(await call([d(['service', 'auth'], ['user', 'user-a'])]));
      assert.ok(responses.every((response) => response.overall_code === Code.OK));
      for (const response of responses.slice(10)) assertOk(response.statuses[0], 10, Unit.SECOND, 0);
    });

    it('still denies through a normal rule next to an over-limit shadow rule (D30)', async () => {
      const value = fresh();
      await call([d(['shadowed', value]), d(['key3', value])], 10);
      const response = await call([d(['shadowed', value]), d(['key3', value])]);
      assert.equal(response.statuses[0]?.code, Code.OK);
      assertOver(response.statuses[1], 10, Unit.HOUR);
      assert.equal(response.overall_code, Code.OVER_LIMIT);
    });

    it('answers OVER_LIMIT in quota mode only when all quota descriptors are over (D32)', async () => {
      const value = fresh();
      await call([d(['quota_one', value])]);
      const oneOver = await call([d(['quota_one', value]), d(['quota_two', value])]);
      assert.equal(oneOver.statuses[0]?.code, Code.OVER_LIMIT);
      assert.equal(oneOver.overall_code, Code.OK);
      const bothOver = await call([d(['quota_one', value]), d(['quota_two', value])]);
      assert.equal(bothOver.overall_code, Code.OVER_LIMIT);
    });
  });

  describe('limit override', () => {
    const override = (entries: [string, string][], requests_per_unit: number, unit: RateLimitUnit): DescriptorInput => ({
      entries,
      limit: { requests_per_unit, unit },
    });

    it('uses the caller limit instead of the config (F39)', async () => {
      const response = await server.client.call('test-domain', [override([['key1', 'value1'], ['subkey1', fresh()]], 10, RateLimitUnit.DAY)]);
      assertOk(response.statuses[0], 10, Unit.DAY, 9);
    });

    it('limits entries no rule matches in a known domain, but not in an unknown one (F40)', async () => {
      const value = fresh();
      for (let index = 1; index <= 3; index++) {
        assertOk((await call([override([['nomatch', value]], 3, RateLimitUnit.HOUR)])).statuses[0], 3, Unit.HOUR, 3 - index);
      }
      assertOver((await call([override([['nomatch', value]], 3, RateLimitUnit.HOUR)])).statuses[0], 3, Unit.HOUR);
      assertNoLimit((await server.client.call('unknown', [override([['nomatch', value]], 3, RateLimitUnit.HOUR)])).statuses[0]);
    });

    it('ignores the shadow mode of the rule it overrides (F41)', async () => {
      const value = fresh();
      await call([override([['shadowed', value]], 1, RateLimitUnit.HOUR)]);
      const response = await call([override([['shadowed', value]], 1, RateLimitUnit.HOUR)]);
      assertOver(response.statuses[0], 1, Unit.HOUR);
    });

    it('keeps the override in its own bucket, apart from the configured rule (F42 differs by design)', async () => {
      const value = fresh();
      for (let index = 0; index < 5; index++) await call([d(['foo', value])]);
      assertOk((await call([override([['foo', value]], 6, RateLimitUnit.MINUTE)])).statuses[0], 6, Unit.MINUTE, 5);
      assertOk((await call([d(['foo', value])])).statuses[0], 10, Unit.MINUTE, 4);
    });
  });
});
