import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { RuleSet } from '../../../src/config/rule-set';
import {
  DeadlinePassedError,
  InvalidRequestError,
  NoConfigLoadedError,
  OverloadedError,
  type RateLimitQuery,
  type RequestDescriptor,
} from '../../../src/core';
import { RateLimiter, type RateLimiterOptions } from '../../../src/limiter/rate-limiter';
import { MemoryBucketStore } from '../../../src/store/memory-store';
import { FakeClock } from '../../support/fake-clock';
import { compileYaml } from '../../support/rules';
import { delegatingStore } from '../../support/store-doubles';

const RULES = compileYaml(`domain: d
descriptors:
  - key: user
    rate_limits:
      - {unit: second, requests_per_unit: 2, name: burst}
      - {unit: hour, requests_per_unit: 3, name: hourly}
  - key: tight
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: loose
    rate_limit: {unit: minute, requests_per_unit: 10}
  - key: quota_a
    quota_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: quota_b
    quota_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: window
    rate_limit: {unit: minute, requests_per_unit: 2, algorithm: fixed_window}
  - key: unl
    rate_limit: {unlimited: true, replaces: [{name: tight_named}]}
  - key: named
    rate_limit: {unit: minute, requests_per_unit: 1, name: tight_named}
  - key: fast
    rate_limit: {unit: second, requests_per_unit: 100000}
  - key: ten
    rate_limit: {unit: second, requests_per_unit: 10}
`);

function makeLimiter(options: Partial<RateLimiterOptions> = {}) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 30));
  const store = new MemoryBucketStore({ clock, maxBuckets: 10_000 });
  return { clock, store, limiter: new RateLimiter({ store, clock, rules: (): RuleSet => RULES, ...options }) };
}

const q = (descriptors: RequestDescriptor[], hits = 0): RateLimitQuery => ({ domain: 'd', descriptors, hits });
const one = (key: string, value: string, extra: Partial<RequestDescriptor> = {}): RequestDescriptor => ({ entries: [{ key, value }], ...extra });

describe('RateLimiter', () => {
  it('rejects an empty domain and an empty descriptor list, naming the field', async () => {
    const { limiter } = makeLimiter();
    await assert.rejects(limiter.shouldRateLimit({ domain: '', descriptors: [one('a', 'b')], hits: 0 }), (error: unknown) => {
      assert.ok(error instanceof InvalidRequestError);
      assert.equal(error.field, 'domain');
      return true;
    });
    await assert.rejects(limiter.shouldRateLimit(q([])), (error: unknown) => error instanceof InvalidRequestError && error.field === 'descriptors');
  });

  it('fails with NoConfigLoadedError until a config loads', async () => {
    const { limiter } = makeLimiter({ rules: () => undefined });
    await assert.rejects(limiter.shouldRateLimit(q([one('tight', 'x')])), NoConfigLoadedError);
  });

  it('admits a descriptor with several limits only if every limit admits it, consuming none otherwise', async () => {
    const { limiter, clock } = makeLimiter();
    const codes: string[] = [];
    for (let second = 0; second < 3; second++) {
      for (let call = 0; call < 2; call++) codes.push((await limiter.shouldRateLimit(q([one('user', 'u')]))).overallCode);
      clock.advance(1000);
    }
    assert.deepEqual(codes, ['OK', 'OK', 'OK', 'OVER_LIMIT', 'OVER_LIMIT', 'OVER_LIMIT'], 'hourly 3 caps it even though burst refills');
    const denied = await limiter.shouldRateLimit(q([one('user', 'u')]));
    assert.equal(denied.statuses[0]?.currentLimit?.name, 'hourly', 'the limit that denied is reported');
  });

  it('does not drain the other limits of a descriptor when one denies', async () => {
    const { limiter, clock } = makeLimiter();
    await limiter.shouldRateLimit(q([one('user', 'u')], 2));
    const denied = await limiter.shouldRateLimit(q([one('user', 'u')], 1));
    assert.equal(denied.overallCode, 'OVER_LIMIT');
    clock.advance(1000);
    const after = await limiter.shouldRateLimit(q([one('user', 'u')], 1));
    assert.equal(after.overallCode, 'OK', 'hourly still had 1 left because the denied call took nothing');
    assert.equal(after.statuses[0]?.limitRemaining, 0);
  });

  it('reports the tightest limit when admitted', async () => {
    const { limiter } = makeLimiter();
    const outcome = await limiter.shouldRateLimit(q([one('user', 'v')]));
    assert.equal(outcome.statuses[0]?.currentLimit?.name, 'burst');
    assert.equal(outcome.statuses[0]?.limitRemaining, 1);
  });

  it('limits descriptors independently and answers OVER_LIMIT if any is over', async () => {
    const { limiter } = makeLimiter();
    await limiter.shouldRateLimit(q([one('tight', 'a')], 2));
    const outcome = await limiter.shouldRateLimit(q([one('loose', 'a'), one('tight', 'a')]));
    assert.equal(outcome.overallCode, 'OVER_LIMIT');
    assert.deepEqual(outcome.statuses.map((status) => [status.code, status.limitRemaining]), [['OK', 9], ['OVER_LIMIT', 0]]);
  });

  it('lets the same bucket twice in one request see the first use', async () => {
    const { limiter } = makeLimiter();
    await limiter.shouldRateLimit(q([one('tight', 'same')]));
    const outcome = await limiter.shouldRateLimit(q([one('tight', 'same'), one('tight', 'same')]));
    assert.deepEqual(outcome.statuses.map((status) => status.code), ['OK', 'OVER_LIMIT']);
  });

  it('uses per-descriptor hits over request hits, and 0 checks without consuming', async () => {
    const { limiter } = makeLimiter();
    const checked = await limiter.shouldRateLimit(q([one('loose', 'h', { hits: 0 })], 5));
    assert.equal(checked.statuses[0]?.limitRemaining, 10);
    const consumed = await limiter.shouldRateLimit(q([one('loose', 'h', { hits: 1 })], 5));
    assert.equal(consumed.statuses[0]?.limitRemaining, 9);
    const requestHits = await limiter.shouldRateLimit(q([one('loose', 'h')], 5));
    assert.equal(requestHits.statuses[0]?.limitRemaining, 4);
  });

  it('rejects a per-descriptor hits_addend beyond uint32', async () => {
    const { limiter } = makeLimiter();
    await assert.rejects(
      limiter.shouldRateLimit(q([one('loose', 'h', { hits: 2 ** 40 })])),
      (error: unknown) => error instanceof InvalidRequestError && error.field === 'descriptors[0].hits_addend',
    );
  });

  it('answers OVER_LIMIT in quota mode only when every quota descriptor is over', async () => {
    const { limiter } = makeLimiter();
    await limiter.shouldRateLimit(q([one('quota_a', 'x')]));
    const oneOver = await limiter.shouldRateLimit(q([one('quota_a', 'x'), one('quota_b', 'x')]));
    assert.equal(oneOver.overallCode, 'OK');
    assert.equal(oneOver.statuses[0]?.code, 'OVER_LIMIT');
    const bothOver = await limiter.shouldRateLimit(q([one('quota_a', 'x'), one('quota_b', 'x')]));
    assert.equal(bothOver.overallCode, 'OVER_LIMIT');
  });

  it('in global shadow mode answers OK overall but keeps the statuses', async () => {
    const { limiter } = makeLimiter({ shadowMode: true });
    await limiter.shouldRateLimit(q([one('tight', 's')], 2));
    const outcome = await limiter.shouldRateLimit(q([one('tight', 's')]));
    assert.equal(outcome.overallCode, 'OK');
    assert.equal(outcome.statuses[0]?.code, 'OVER_LIMIT');
  });

  it('lets an unlimited rule replace a named limit in the same request', async () => {
    const { limiter } = makeLimiter();
    const outcome = await limiter.shouldRateLimit(q([one('named', 'n'), one('unl', 'n'), one('named', 'n')]));
    assert.deepEqual(outcome.statuses.map((status) => [status.code, status.limitRemaining]), [['OK', 0], ['OK', 4294967295], ['OK', 0]]);
    assert.equal(outcome.statuses[0]?.currentLimit, undefined);
  });

  it('keeps a fixed window counting across calls until the window rolls', async () => {
    const { limiter, clock } = makeLimiter();
    const codes = [];
    for (let call = 0; call < 3; call++) codes.push((await limiter.shouldRateLimit(q([one('window', 'w')]))).overallCode);
    clock.advance(30_000);
    codes.push((await limiter.shouldRateLimit(q([one('window', 'w')]))).overallCode);
    assert.deepEqual(codes, ['OK', 'OK', 'OVER_LIMIT', 'OK']);
  });

  it('admits exactly the capacity to concurrent callers of one bucket', async () => {
    const { limiter } = makeLimiter();
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, index) => limiter.shouldRateLimit(q(index % 2 === 0 ? [one('loose', 'race')] : [one('loose', 'race'), one('tight', 'race')]))),
    );
    const admitted = outcomes.filter((outcome) => outcome.statuses[0]?.code === 'OK').length;
    assert.equal(admitted, 10, 'no over-admission and no request failed for contention');
  });

  it('lets two engines with stale local copies share one store without over-admitting or failing', async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore({ clock, maxBuckets: 100 });
    const [first, second] = [0, 1].map(() => new RateLimiter({ store, clock, rules: (): RuleSet => RULES, recordCacheTtlMs: 60_000 })) as [RateLimiter, RateLimiter];
    const codes = [];
    // The first engine writes alone long enough to decide from its copy; the second then moves the versions under it.
    for (let call = 0; call < 4; call++) codes.push((await first.shouldRateLimit(q([one('loose', 'shared')]))).overallCode);
    for (let call = 0; call < 3; call++) codes.push((await second.shouldRateLimit(q([one('loose', 'shared')]))).overallCode);
    for (let call = 0; call < 7; call++) codes.push((await first.shouldRateLimit(q([one('loose', 'shared')]))).overallCode);
    assert.equal(codes.filter((code) => code === 'OK').length, 10);
    assert.equal(first.counters.versionConflicts, 1, "the first engine's stale copy was caught once by the version check, then it let the store decide");
    assert.equal(second.counters.versionConflicts, 0);
  });

  it('writes a bucket that refills within milliseconds from its copy without version conflicts', async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore({ clock, maxBuckets: 100 });
    const limiter = new RateLimiter({ store, clock, rules: (): RuleSet => RULES, recordCacheTtlMs: 60_000 });
    // One hit refills in 0.01 ms: calls 3 ms apart each find the bucket full again.
    for (let call = 0; call < 200; call++) {
      assert.equal((await limiter.shouldRateLimit({ domain: 'd', descriptors: [one('fast', 'k')], hits: 0 })).overallCode, 'OK');
      clock.advance(3);
    }
    assert.equal(limiter.counters.versionConflicts, 0);
  });

  it('does not take another engine’s write for its own when the store denied it: no conditional write from a stale copy, no conflict', async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore({ clock, maxBuckets: 100 });
    const [first, second] = [0, 1].map(() => new RateLimiter({ store, clock, rules: (): RuleSet => RULES, recordCacheTtlMs: 60_000 })) as [RateLimiter, RateLimiter];
    const ask = (engine: RateLimiter, hits: number) => engine.shouldRateLimit({ domain: 'd', descriptors: [one('ten', 'k')], hits });
    await ask(second, 9);
    // Every half second the bucket refills 5 and the first engine takes them; the second, whose
    // copy shows those 5 plus the 1 it saw left, asks for 6 and the store denies it: its tries
    // move no version, the first engine's writes do.
    for (let round = 0; round < 4; round++) {
      clock.advance(500);
      assert.equal((await ask(first, 5)).overallCode, 'OK');
      assert.equal((await ask(second, 6)).overallCode, 'OVER_LIMIT');
    }
    clock.advance(500);
    await ask(first, 5);
    assert.equal((await ask(second, 1)).overallCode, 'OK');
    assert.equal(second.counters.versionConflicts, 0, 'the second engine never counted itself the only writer');
  });

  it('lets the store decide records other engines also write, so sharing costs no conflicts', async () => {
    const clock = new FakeClock();
    const store = new MemoryBucketStore({ clock, maxBuckets: 100 });
    const engines = [0, 1, 2].map(() => new RateLimiter({ store, clock, rules: (): RuleSet => RULES, recordCacheTtlMs: 60_000 }));
    const codes = [];
    for (let call = 0; call < 30; call++) codes.push((await (engines[call % 3] as RateLimiter).shouldRateLimit(q([one('loose', 'rr')]))).overallCode);
    assert.equal(codes.filter((code) => code === 'OK').length, 10);
    assert.equal(engines.reduce((sum, engine) => sum + engine.counters.versionConflicts, 0), 0);
  });

  it('refuses calls beyond maxCallsInFlight at once with OverloadedError, and takes calls again once they drain', async () => {
    const clock = new FakeClock();
    const inner = new MemoryBucketStore({ clock, maxBuckets: 100 });
    const held: (() => void)[] = [];
    const store = delegatingStore(inner, { commit: (groups, nowMs) => new Promise((resolve) => held.push(() => resolve(inner.commit(groups, nowMs)))) });
    const limiter = new RateLimiter({ store, clock, rules: (): RuleSet => RULES, maxCallsInFlight: 2 });
    const first = limiter.shouldRateLimit(q([one('loose', 'a')]));
    const second = limiter.shouldRateLimit(q([one('loose', 'b')]));
    await assert.rejects(limiter.shouldRateLimit(q([one('loose', 'c')])), (error: unknown) => error instanceof OverloadedError && error.transient);
    await new Promise((resolve) => setImmediate(resolve));
    for (const release of held.splice(0)) release();
    assert.deepEqual([(await first).overallCode, (await second).overallCode], ['OK', 'OK']);
    const third = limiter.shouldRateLimit(q([one('loose', 'c')]));
    await new Promise((resolve) => setImmediate(resolve));
    for (const release of held.splice(0)) release();
    assert.equal((await third).overallCode, 'OK');
  });

  it('does not decide a call whose deadline passed while it waited behind the commit in flight: nothing consumed, no fallback debt', async () => {
    const clock = new FakeClock();
    const inner = new MemoryBucketStore({ clock, maxBuckets: 100 });
    const held: (() => void)[] = [];
    const committed: number[] = [];
    const store = delegatingStore(inner, {
      commit: (groups, nowMs) => {
        committed.push(groups.reduce((sum, group) => sum + group.requests.length, 0));
        return new Promise((resolve) => held.push(() => resolve(inner.commit(groups, nowMs))));
      },
    });
    const limiter = new RateLimiter({ store, clock, rules: (): RuleSet => RULES });
    const first = limiter.shouldRateLimit(q([one('loose', 'late')]));
    const late = limiter.shouldRateLimit({ ...q([one('loose', 'late')]), timeBudgetMs: 5 });
    const patient = limiter.shouldRateLimit({ ...q([one('loose', 'late')]), timeBudgetMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (const release of held.splice(0)) release();
    assert.equal((await first).overallCode, 'OK');
    await assert.rejects(late, (error: unknown) => error instanceof DeadlinePassedError && error.transient);
    await new Promise((resolve) => setImmediate(resolve));
    for (const release of held.splice(0)) release();
    assert.equal((await patient).overallCode, 'OK');
    assert.deepEqual(committed, [1, 1], 'the late call was never sent; the patient one went alone');
    assert.equal(limiter.counters.fallbackDecisions, 0);
    assert.equal(limiter.owesFallbackDebts, false);
  });

  it('denies at once, without waiting for the commit in flight, a call its copy denies after the admissions queued ahead of it', async () => {
    const clock = new FakeClock();
    const inner = new MemoryBucketStore({ clock, maxBuckets: 100 });
    const held: (() => void)[] = [];
    let holding = false;
    const store = delegatingStore(inner, {
      commit: (groups, nowMs) => (holding ? new Promise((resolve) => held.push(() => resolve(inner.commit(groups, nowMs)))) : inner.commit(groups, nowMs)),
    });
    const limiter = new RateLimiter({ store, clock, rules: (): RuleSet => RULES, recordCacheTtlMs: 60_000 });
    const call = () => limiter.shouldRateLimit(q([one('loose', 'hot')], 1));
    // Five calls alone make this engine the record's only writer, with 5 of its 10 tokens left.
    for (let index = 0; index < 5; index++) assert.equal((await call()).overallCode, 'OK');
    holding = true;
    const inFlight = call();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(held.length, 1, 'its conditional write is on its way');
    const queued = [call(), call(), call(), call()];
    const answeredNow = await Promise.race([call().then((outcome) => outcome.overallCode), new Promise((resolve) => setImmediate(() => resolve('still waiting')))]);
    assert.equal(answeredNow, 'OVER_LIMIT', 'the 4 queued calls take the last 4 tokens: the sixth is denied without waiting');
    for (let round = 0; round < 2; round++) {
      for (const release of held.splice(0)) release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual([(await inFlight).overallCode, ...(await Promise.all(queued)).map((outcome) => outcome.overallCode)], ['OK', 'OK', 'OK', 'OK', 'OK']);
    holding = false;
    assert.equal((await call()).overallCode, 'OVER_LIMIT');
    assert.equal(limiter.counters.versionConflicts, 0);
  });

  it('never admits more than the capacity to callers that arrive while commits are in flight, whatever order the commits return in', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 30 }), fc.array(fc.nat(), { maxLength: 60 }), async (hits, releaseOrder) => {
        const clock = new FakeClock();
        const inner = new MemoryBucketStore({ clock, maxBuckets: 100 });
        const held: (() => void)[] = [];
        const store = delegatingStore(inner, { commit: (groups, nowMs) => new Promise((resolve) => held.push(() => resolve(inner.commit(groups, nowMs)))) });
        const limiter = new RateLimiter({ store, clock, rules: (): RuleSet => RULES, recordCacheTtlMs: 60_000 });
        const calls: Promise<{ hits: number; code: string }>[] = [];
        let order = 0;
        for (const [index, hit] of hits.entries()) {
          calls.push(limiter.shouldRateLimit(q([one('loose', 'prop')], hit)).then((outcome) => ({ hits: hit, code: outcome.overallCode })));
          // Some calls arrive while commits are held, some after one returned.
          if (index % 3 === 2 && held.length > 0) {
            const [release] = held.splice((releaseOrder[order++] ?? 0) % held.length, 1);
            release?.();
            await new Promise((resolve) => setImmediate(resolve));
          }
        }
        let settled = false;
        void Promise.all(calls).then(() => (settled = true));
        while (!settled) {
          const [release] = held.splice((releaseOrder[order++] ?? 0) % Math.max(1, held.length), 1);
          release?.();
          await new Promise((resolve) => setImmediate(resolve));
        }
        const admitted = (await Promise.all(calls)).filter(({ code }) => code === 'OK').reduce((sum, { hits: taken }) => sum + taken, 0);
        assert.ok(admitted <= 10, `admitted ${admitted} tokens of 10`);
        const [record] = await inner.load(['d|loose=prop#minute']);
        assert.equal(10 - (record?.state.tokens ?? 10), admitted, 'the store took exactly what was admitted');
      }),
      { numRuns: 150 },
    );
  });

  it('answers exact denials from its local copy without writing', async () => {
    const { limiter } = makeLimiter({ recordCacheTtlMs: 60_000 });
    for (let call = 0; call < 12; call++) await limiter.shouldRateLimit(q([one('loose', 'local')]));
    assert.deepEqual({ ...limiter.counters }, { decisions: 12, groupsCommitted: 10, versionConflicts: 0, fallbackDecisions: 0 }, 'the 2 denials sent nothing');
  });

  it('adds RateLimit-* headers from the tightest descriptor when enabled', async () => {
    const { limiter } = makeLimiter({ responseHeaders: { limit: 'RateLimit-Limit', remaining: 'RateLimit-Remaining', reset: 'RateLimit-Reset' } });
    const outcome = await limiter.shouldRateLimit(q([one('loose', 'hd'), one('tight', 'hd'), one('unl', 'x')]));
    assert.deepEqual(outcome.responseHeaders, [
      { key: 'RateLimit-Limit', value: '2' },
      { key: 'RateLimit-Remaining', value: '1' },
      { key: 'RateLimit-Reset', value: '30' },
    ]);
  });

  it('adds no headers by default', async () => {
    const { limiter } = makeLimiter();
    assert.deepEqual((await limiter.shouldRateLimit(q([one('tight', 'nh')]))).responseHeaders, []);
  });
});

describe('RateLimiter while a shard is down', () => {
  const LIMITS = compileYaml(`domain: d
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 10}
`);

  it('decides from a local bucket at half capacity, then writes what it admitted back to the shard', async () => {
    const clock = new FakeClock();
    const shard = new MemoryBucketStore({ clock, maxBuckets: 100 });
    let shardUp = true;
    const store = delegatingStore(shard, {
      commit: async (groups, nowMs) =>
        shardUp ? shard.commit(groups, nowMs) : groups.map(() => ({ kind: 'unavailable' as const, error: new Error('down') })),
    });
    const limiter = new RateLimiter({ store, clock, rules: (): RuleSet => LIMITS });
    const call = async () => (await limiter.shouldRateLimit(q([one('user', 'u')]))).overallCode;
    for (let index = 0; index < 2; index++) assert.equal(await call(), 'OK');
    shardUp = false;
    const duringOutage = [];
    for (let index = 0; index < 8; index++) duringOutage.push(await call());
    assert.deepEqual(duringOutage, ['OK', 'OK', 'OK', 'OK', 'OK', 'OVER_LIMIT', 'OVER_LIMIT', 'OVER_LIMIT'], 'half of the capacity, 5');
    assert.equal(limiter.counters.fallbackDecisions, 8);
    shardUp = true;
    await limiter.writeBackFallbackDebts();
    const [record] = await shard.load(['d|user=u#hour']);
    assert.equal(record?.state.tokens, 3, '10 − 2 before − 5 during the outage: the record keeps the lower count');
    const after = [];
    for (let index = 0; index < 5; index++) after.push(await call());
    assert.deepEqual(after, ['OK', 'OK', 'OK', 'OVER_LIMIT', 'OVER_LIMIT'], 'exactly the capacity over the whole run');
  });
});

describe('RateLimiter with request ids', () => {
  const LIMITS = compileYaml(`domain: d
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 3}
`);
  const make = () => makeLimiter({ rules: (): RuleSet => LIMITS, idempotencyTtlMs: 60_000 });
  const withId = (requestId: string | undefined): RateLimitQuery => ({ domain: 'd', descriptors: [one('user', 'u')], hits: 0, requestId });

  it('answers a retried request id with the first answer and consumes nothing', async () => {
    const { limiter } = make();
    const first = await limiter.shouldRateLimit(withId('req-1'));
    const retried = await limiter.shouldRateLimit(withId('req-1'));
    assert.deepEqual(retried, first);
    assert.equal((await limiter.shouldRateLimit(withId('req-2'))).statuses[0]?.limitRemaining, 1, 'only req-1 and req-2 consumed');
  });

  it('keeps the answer in the store, so another instance answers a retry the same way', async () => {
    const { clock, store, limiter } = make();
    const other = new RateLimiter({ store, clock, rules: (): RuleSet => LIMITS, idempotencyTtlMs: 60_000 });
    await limiter.shouldRateLimit(withId('a'));
    await limiter.shouldRateLimit(withId('b'));
    const third = await limiter.shouldRateLimit(withId('c'));
    assert.equal(third.statuses[0]?.limitRemaining, 0);
    const retriedElsewhere = await other.shouldRateLimit(withId('c'));
    assert.equal(retriedElsewhere.overallCode, 'OK', 'the first answer, although the bucket is now empty');
    assert.equal((await other.shouldRateLimit(withId('d'))).overallCode, 'OVER_LIMIT');
  });

  it('forgets request ids after their time to live', async () => {
    const { clock, limiter } = make();
    await limiter.shouldRateLimit(withId('x'));
    clock.advance(60_001);
    assert.equal((await limiter.shouldRateLimit(withId('x'))).statuses[0]?.limitRemaining, 1, 'consumed again: a new request');
  });

  it('refuses a request id longer than 256 characters, naming the field', async () => {
    const { limiter } = make();
    await assert.rejects(limiter.shouldRateLimit(withId('r'.repeat(257))), (error: unknown) => error instanceof InvalidRequestError && error.field === 'x-request-id');
  });
});

describe('RateLimiter across instances whose clocks disagree', () => {
  const LIMITS = compileYaml(`domain: d
descriptors:
  - key: user
    rate_limit: {unit: second, requests_per_unit: 10}
`);

  for (const skewMs of [0, 300, 2000, -2000]) {
    it(`admits no more than C + R·(T + δ) with one clock ${skewMs} ms off (README's bound)`, async () => {
      const truth = new FakeClock(Date.UTC(2026, 0, 1));
      const skewed = new FakeClock(truth.nowMs() + skewMs);
      const store = new MemoryBucketStore({ clock: truth, maxBuckets: 100 });
      const instances = [truth, skewed].map((clock) => new RateLimiter({ store, clock, rules: (): RuleSet => LIMITS }));
      let admitted = 0;
      const stepMs = 50;
      const totalMs = 5000;
      for (let elapsed = 0; elapsed <= totalMs; elapsed += stepMs) {
        for (const instance of instances) {
          for (let call = 0; call < 3; call++) {
            if ((await instance.shouldRateLimit(q([one('user', 'skewed')]))).overallCode === 'OK') admitted++;
          }
        }
        truth.advance(stepMs);
        skewed.advance(stepMs);
      }
      const bound = 10 + 10 * ((totalMs + Math.abs(skewMs)) / 1000);
      assert.ok(admitted <= bound, `admitted ${admitted} > ${bound}`);
      assert.ok(admitted >= 0.9 * (10 + 10 * (totalMs / 1000)) - 10 * (Math.abs(skewMs) / 1000), `admitted ${admitted}: a clock behind may only cost its skew`);
    });
  }
});
