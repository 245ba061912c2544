import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { BucketState, Limit } from '../../../../src/core';
import { consumeTokenBucket, RECORD_MIN_LIFETIME_MS } from '../../../../src/bucket/token-bucket';
import { connectShards } from '../../../../src/store/redis/connect-shards';
import type { ShardClient } from '../../../../src/store/redis/redis-client';
import { RedisShardStore } from '../../../../src/store/redis/redis-shard-store';
import { describeStoreContract } from '../../../contract/store.contract';
import { FakeClock } from '../../../support/fake-clock';
import { RedisServer, startShards, stopAll } from '../../../support/redis-server';
import { TcpProxy } from '../../../support/tcp-proxy';

const silent = pino({ level: 'silent' });

async function makeShardStore(servers: readonly RedisServer[], clock: FakeClock, keyPrefix = `t${Date.now()}-${Math.random()}:`, roundHoldMs?: number) {
  const shards = servers.map((server, index) => ({ name: `shard-${index}`, url: server.url() }));
  const clients = await connectShards({ shards, commandTimeoutMs: 1000, logger: silent });
  return new RedisShardStore({ shards: clients, clock, keyPrefix, ...(roundHoldMs === undefined ? {} : { roundHoldMs }) });
}

const TEN_PER_SECOND = { requestsPerUnit: 10, unit: 'second', capacity: 10, algorithm: 'token_bucket' } as const;

/** A bucket key the store places on `shard`. */
function keyOn(store: RedisShardStore, shard: string): string {
  for (let index = 0; ; index++) {
    if (store.placement(`d|user=u${index}`) === shard) return `d|user=u${index}`;
  }
}

for (const shardCount of [1, 3]) {
  describe(`RedisShardStore on ${shardCount} real redis-server shard(s)`, () => {
    let servers: RedisServer[] = [];
    before(async function () {
      this.timeout(20_000);
      servers = await startShards(shardCount);
    });
    after(() => stopAll(servers));

    // Redis expires keys on its own clock, so this store is driven with a clock close to real time.
    describeStoreContract(`redis, ${shardCount} shard(s)`, async () => {
      const clock = new FakeClock(Date.now());
      const passTime = async (ms: number): Promise<void> => {
        clock.advance(ms);
        await new Promise((resolve) => setTimeout(resolve, ms));
      };
      return { clock, store: await makeShardStore(servers, clock), passTime };
    });

    it('keeps the record of a bucket that refills in a millisecond for the minimum lifetime, whoever decided it', async () => {
      const clock = new FakeClock(Date.now());
      const store = await makeShardStore(servers, clock, 'life:');
      const fast: Limit = { requestsPerUnit: 1_000_000, unit: 'second', capacity: 1_000_000, algorithm: 'token_bucket' };
      try {
        // Decided by the shard (no copy), and written by the engine from its own decision.
        await store.commit([{ writes: [], requests: [{ hits: 1, limits: [{ key: 'by-shard', limit: fast }] }] }], clock.nowMs());
        const decision = consumeTokenBucket(undefined, fast, 1, clock.nowMs());
        const write = { key: 'by-engine', expectedVersion: 0, state: decision.next as BucketState, expireAtMs: decision.expireAtMs };
        await store.commit([{ writes: [write], requests: [] }], clock.nowMs());
        for (const key of ['by-shard', 'by-engine']) {
          const ttl = await store.onOwner(key, 'test', (client, prefixed) => client.pttl(prefixed));
          assert.ok(ttl > RECORD_MIN_LIFETIME_MS - 200 && ttl <= RECORD_MIN_LIFETIME_MS, `${key}: ${ttl} ms to live`);
        }
      } finally {
        await store.close();
      }
    });

    it('keeps records apart between key prefixes', async () => {
      const clock = new FakeClock(Date.now());
      const first = await makeShardStore(servers, clock, 'one:');
      const second = await makeShardStore(servers, clock, 'two:');
      try {
        const written = { key: 'k', expectedVersion: 0, state: { tokens: 1, updatedAtMs: 0 }, expireAtMs: clock.nowMs() + 60_000 };
        await first.commit([{ writes: [written], requests: [] }], clock.nowMs());
        assert.equal((await second.load(['k']))[0], undefined);
      } finally {
        await Promise.all([first.close(), second.close()]);
      }
    });
  });
}

describe('RedisShardStore script calls', () => {
  let server: RedisServer;
  before(async function () {
    this.timeout(20_000);
    [server] = (await startShards(1)) as [RedisServer];
  });
  after(() => stopAll([server]));

  it('sends the commits that arrive while a script call is on its way in one call when it comes back', async () => {
    const clock = new FakeClock(Date.now());
    const store = await makeShardStore([server], clock);
    const admin = new Redis(server.url());
    try {
      await admin.config('RESETSTAT');
      const commitOne = (key: string) =>
        store.commit([{ writes: [], requests: [{ hits: 1, limits: [{ key, limit: TEN_PER_SECOND }] }] }], clock.nowMs(), { timeoutMs: 5000 });
      // The shard holds the first call unanswered for a while; ten more commits come, each in its own turn of the event loop.
      await admin.client('PAUSE', 60);
      const first = commitOne('first');
      const later: ReturnType<typeof commitOne>[] = [];
      for (let index = 0; index < 10; index++) {
        await nextTurn();
        later.push(commitOne(`later-${index}`));
      }
      const outcomes = await Promise.all([first, ...later]);
      assert.ok(outcomes.every(([outcome]) => outcome?.kind === 'decided' && outcome.results[0]?.[0]?.allowed === true), JSON.stringify(outcomes));
      const stats = await admin.info('commandstats');
      const scriptCalls = [...stats.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[2]), 0);
      // One for the first commit, one for the rest, or a third where the ten turns took longer
      // than the 2 ms a batch waits for the call in flight (a loaded machine); without gathering, 11.
      assert.ok(scriptCalls >= 2 && scriptCalls <= 3, stats);
    } finally {
      admin.disconnect();
      await store.close();
    }
  });
});

describe('RedisShardStore rounds: answers from several shards reach their callers together', () => {
  let servers: RedisServer[] = [];
  before(async function () {
    this.timeout(20_000);
    servers = await startShards(2);
  });
  after(() => stopAll(servers));

  /** Commits one hit on a key of each shard in the same turn, shard-1 paused for `pauseMs` (under the clients' 1 s command timeout); how long each took to answer. */
  async function answerTimes(roundHoldMs: number, pauseMs: number): Promise<{ fast: number; paused: number }> {
    const clock = new FakeClock(Date.now());
    const store = await makeShardStore(servers, clock, undefined, roundHoldMs);
    const admin = new Redis((servers[1] as RedisServer).url());
    try {
      const commitOne = async (key: string): Promise<number> => {
        const startedAt = performance.now();
        const [outcome] = await store.commit([{ writes: [], requests: [{ hits: 1, limits: [{ key, limit: TEN_PER_SECOND }] }] }], clock.nowMs(), { timeoutMs: 5000 });
        assert.equal(outcome?.kind, 'decided', JSON.stringify(outcome));
        return performance.now() - startedAt;
      };
      // Both shards know the script before the timed commits: a first EVALSHA fails over to EVAL, a second round trip.
      await Promise.all([commitOne(keyOn(store, 'shard-0')), commitOne(keyOn(store, 'shard-1'))]);
      await admin.client('PAUSE', pauseMs);
      const [fast, paused] = await Promise.all([commitOne(keyOn(store, 'shard-0')), commitOne(keyOn(store, 'shard-1'))]);
      return { fast, paused };
    } finally {
      admin.disconnect();
      await store.close();
    }
  }

  it('holds a shard’s answers until the rest of their round has answered', async function () {
    this.timeout(20_000);
    const { fast, paused } = await answerTimes(5000, 200);
    assert.ok(paused >= 150, `the paused shard answered after ${Math.round(paused)} ms`);
    assert.ok(fast >= paused - 20, `the other shard's caller had its answer at ${Math.round(fast)} ms, the paused one's at ${Math.round(paused)} ms`);
  });

  it('holds them no longer than the hold when a shard is slow', async function () {
    this.timeout(20_000);
    const { fast, paused } = await answerTimes(30, 800);
    assert.ok(paused >= 700, `the paused shard answered after ${Math.round(paused)} ms`);
    assert.ok(fast < 400, `the other shard's caller waited ${Math.round(fast)} ms for a shard paused 800 ms, held 30 ms`);
  });
});

describe('RedisShardStore failures', () => {
  it('names the shard that does not answer', async function () {
    this.timeout(20_000);
    const [up, down] = await startShards(2);
    const clock = new FakeClock(Date.now());
    const store = await makeShardStore([up as RedisServer, down as RedisServer], clock);
    try {
      await (down as RedisServer).kill();
      await assert.rejects(store.ping(), (error: unknown) => (error as { code?: string; shard?: string }).code === 'ERR_STORE_UNAVAILABLE' && (error as { shard?: string }).shard === 'shard-1');
      const health = await store.health();
      assert.deepEqual(health.map((shard) => [shard.shard, shard.ok]), [['shard-0', true], ['shard-1', false]]);
    } finally {
      await store.close();
      await stopAll([up, down]);
    }
  });

  it('gives up on a command at once when its connection closes, without waiting out the budget', async function () {
    this.timeout(20_000);
    const [server] = (await startShards(1)) as [RedisServer];
    const proxy = await TcpProxy.start(server.port);
    const clock = new FakeClock(Date.now());
    const clients = await connectShards({ shards: [{ name: 'proxied', url: proxy.url() }], commandTimeoutMs: 5000, logger: silent });
    const store = new RedisShardStore({ shards: clients, clock, keyPrefix: `lost${Date.now()}:` });
    try {
      proxy.set({ kind: 'delay', ms: 1000 });
      const startedAt = performance.now();
      const commit = store.commit([{ writes: [], requests: [{ hits: 1, limits: [{ key: 'k', limit: TEN_PER_SECOND }] }] }], clock.nowMs(), { timeoutMs: 2000 });
      setTimeout(() => proxy.resetAll(), 20);
      const [outcome] = await commit;
      const tookMs = performance.now() - startedAt;
      assert.equal(outcome?.kind, 'unavailable');
      assert.ok(tookMs < 500, `answered ${Math.round(tookMs)} ms after the reset at 20 ms, not at the 2000 ms budget`);
    } finally {
      await store.close();
      await proxy.stop();
      await stopAll([server]);
    }
  });

  it('after a lost connection, neither sends the lost commit again nor keeps skipping the shard', async function () {
    this.timeout(20_000);
    const [server] = (await startShards(1)) as [RedisServer];
    const proxy = await TcpProxy.start(server.port);
    const clock = new FakeClock(Date.now());
    const prefix = `resend${Date.now()}:`;
    const clients = await connectShards({ shards: [{ name: 'proxied', url: proxy.url() }], commandTimeoutMs: 5000, logger: silent });
    const store = new RedisShardStore({ shards: clients, clock, keyPrefix: prefix });
    const admin = new Redis(server.url());
    try {
      // Slow to refill, so a record written stays for minutes.
      const limit = { requestsPerUnit: 10, unit: 'hour', capacity: 10, algorithm: 'token_bucket' } as const;
      const commitOne = (key: string) => store.commit([{ writes: [], requests: [{ hits: 1, limits: [{ key, limit }] }] }], clock.nowMs(), { timeoutMs: 2000 });
      proxy.set({ kind: 'delay', ms: 1000 });
      const lost = commitOne('lost');
      setTimeout(() => proxy.resetAll(), 20);
      assert.equal((await lost)[0]?.kind, 'unavailable');
      proxy.set({ kind: 'pass' });
      const client = clients.get('proxied') as ShardClient;
      while (client.status !== 'ready') await new Promise((resolve) => setTimeout(resolve, 10));
      // The lost command is still waiting out its 5 s command timeout: it must not hold the shard.
      const [next] = await commitOne('next');
      assert.equal(next?.kind, 'decided', 'the shard takes commits again as soon as it is reconnected');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await admin.exists(`${prefix}next`), 1, 'records are where this test looks');
      assert.equal(await admin.exists(`${prefix}lost`), 0, 'the lost commit was not sent again on the new connection');
    } finally {
      admin.disconnect();
      await store.close();
      await proxy.stop();
      await stopAll([server]);
    }
  });

  it('refuses to start with a wrong password, naming the shard', async function () {
    this.timeout(20_000);
    const server = await RedisServer.start({ args: ['--requirepass', 'right-secret'] });
    try {
      await assert.rejects(
        connectShards({ shards: [{ name: 'eu-west', url: server.url(':wrong-secret@') }], commandTimeoutMs: 500, logger: silent }),
        (error: unknown) => {
          const typed = error as { code?: string; shard?: string; message: string };
          assert.equal(typed.code, 'ERR_STORE_AUTH');
          assert.equal(typed.shard, 'eu-west');
          assert.doesNotMatch(typed.message, /wrong-secret/, 'the password is never printed');
          return true;
        },
      );
      const clients = await connectShards({ shards: [{ name: 'eu-west', url: server.url(':right-secret@') }], commandTimeoutMs: 500, logger: silent });
      await Promise.all([...clients.values()].map((client) => client.quit()));
    } finally {
      await server.kill();
    }
  });
});
