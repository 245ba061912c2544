import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { CommitGroup, Limit } from '../../../../src/core';
import { connectShards } from '../../../../src/store/redis/connect-shards';
import { RedisShardStore } from '../../../../src/store/redis/redis-shard-store';
import { ShardRing } from '../../../../src/store/redis/shard-ring';
import { FakeClock } from '../../../support/fake-clock';
import { RedisServer, startShards, stopAll } from '../../../support/redis-server';

const silent = pino({ level: 'silent' });
const PER_MINUTE_5: Limit = { requestsPerUnit: 5, unit: 'minute', capacity: 5, algorithm: 'token_bucket' };

const take = (key: string): CommitGroup => ({ writes: [], requests: [{ hits: 1, limits: [{ key, limit: PER_MINUTE_5 }] }] });

async function connect(servers: Record<string, RedisServer>, commandTimeoutMs = 1000) {
  return connectShards({ shards: Object.entries(servers).map(([name, server]) => ({ name, url: server.url() })), commandTimeoutMs, logger: silent });
}

/** A bucket id that the ring over `after` places on `target`, and the ring over `before` elsewhere. */
function keyMovingTo(target: string, before: readonly string[], after: readonly string[]): string {
  const was = new ShardRing(before);
  const now = new ShardRing(after);
  for (let index = 0; ; index++) {
    const key = `d|user=u${index}#minute`;
    if (now.shardFor(key) === target && was.shardFor(key) !== target) return key;
  }
}

describe('RedisShardStore: time budgets and transient failures', function () {
  this.timeout(20_000);
  let server: RedisServer;
  beforeEach(async () => {
    server = await RedisServer.start();
  });
  afterEach(() => server.kill());

  it('answers `unavailable` within the caller’s budget when the shard is paused, however long the command timeout', async () => {
    const clock = new FakeClock(Date.now());
    const store = new RedisShardStore({ shards: await connect({ only: server }, 5000), clock, commandTimeoutMs: 5000 });
    try {
      server.pause();
      const startedMs = performance.now();
      const [outcome] = await store.commit([take('d|user=p#minute')], clock.nowMs(), { timeoutMs: 15 });
      const tookMs = performance.now() - startedMs;
      assert.equal(outcome?.kind, 'unavailable');
      assert.ok(tookMs < 40, `gave up after ${tookMs.toFixed(1)} ms`);
      const skippedAt = performance.now();
      const [next] = await store.commit([take('d|user=q#minute')], clock.nowMs(), { timeoutMs: 15 });
      assert.equal(next?.kind, 'unavailable');
      assert.ok(performance.now() - skippedAt < 5, 'while a command is overdue the shard is skipped at once, not sent more in-doubt commands');
    } finally {
      server.resume();
      await store.close();
    }
  });

  it('retries a command whose connection was reset, within the budget, instead of falling back', async () => {
    const clock = new FakeClock(Date.now());
    const store = new RedisShardStore({ shards: await connect({ only: server }), clock });
    const admin = new Redis(server.url());
    try {
      let answered = 0;
      for (let round = 0; round < 5; round++) {
        await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        const [outcome] = await store.commit([take(`d|user=r${round}#minute`)], clock.nowMs(), { timeoutMs: 500 });
        if (outcome?.kind === 'decided') answered++;
      }
      assert.equal(answered, 5, 'every commit after a reset connection was decided by the shard');
    } finally {
      admin.disconnect();
      await store.close();
    }
  });
});

describe('RedisShardStore: a shard-list change hands buckets off', function () {
  this.timeout(20_000);
  let servers: RedisServer[] = [];
  before(async () => {
    servers = await startShards(3);
  });
  after(() => stopAll(servers));

  it('seeds a moved bucket from its previous owner, so a ring change gives nobody a fresh bucket', async () => {
    const [a, b, c] = servers as [RedisServer, RedisServer, RedisServer];
    const clock = new FakeClock(Date.now());
    const key = keyMovingTo('c', ['a', 'b'], ['a', 'b', 'c']);
    const clients = await connect({ a, b });
    const store = new RedisShardStore({ shards: clients, clock, keyPrefix: 'moved:' });
    try {
      for (let hit = 0; hit < 4; hit++) await store.commit([take(key)], clock.nowMs());
      const added = await connect({ c });
      store.reshard(new Map([...clients, ...added]));
      const verdicts = [];
      for (let hit = 0; hit < 3; hit++) {
        const [outcome] = await store.commit([take(key)], clock.nowMs());
        assert.equal(outcome?.kind, 'decided');
        verdicts.push(outcome.kind === 'decided' && outcome.results[0]?.[0]?.allowed);
      }
      assert.deepEqual(verdicts, [true, false, false], 'one token was left of five, on the new owner as on the old');
      assert.equal(store.counters.handoffs, 1, 'handed off once, then served by the new owner alone');
      const reader = new Redis(c.url());
      const onNewOwner = await reader.get(`moved:${key}`).finally(() => reader.disconnect());
      assert.match(String(onNewOwner), /^\d+:0:/, 'the new owner holds the record, emptied');
      assert.equal((await store.load([key]))[0]?.state.tokens, 0);
    } finally {
      await store.close();
    }
  });

  it('keeps the record version across the move, so a copy read before it still writes conditionally', async () => {
    const [a, b, c] = servers as [RedisServer, RedisServer, RedisServer];
    const clock = new FakeClock(Date.now());
    const key = keyMovingTo('c', ['a', 'b'], ['a', 'b', 'c']);
    const clients = await connect({ a, b });
    const store = new RedisShardStore({ shards: clients, clock, keyPrefix: 'version:' });
    try {
      await store.commit([take(key)], clock.nowMs());
      const [before] = await store.load([key]);
      store.reshard(new Map([...clients, ...(await connect({ c }))]));
      const write = { key, expectedVersion: before?.version ?? -1, state: { tokens: 3, updatedAtMs: clock.nowMs() }, expireAtMs: clock.nowMs() + 60_000 };
      const [outcome] = await store.commit([{ writes: [write], requests: take(key).requests }], clock.nowMs());
      assert.equal(outcome?.kind, 'written');
      assert.equal((await store.load([key]))[0]?.version, (before?.version ?? 0) + 1);
    } finally {
      await store.close();
    }
  });

  it('goes on without the old record when the previous owner is down, and counts it', async () => {
    const extra = await RedisServer.start();
    const [a, b] = servers as [RedisServer, RedisServer];
    const clock = new FakeClock(Date.now());
    const key = keyMovingTo('a', ['a', 'b', 'gone'], ['a', 'b']);
    const clients = await connect({ a, b, gone: extra });
    const store = new RedisShardStore({ shards: clients, clock, keyPrefix: 'gone:' });
    try {
      store.reshard(new Map([...clients].filter(([name]) => name !== 'gone')));
      await extra.kill();
      const [outcome] = await store.commit([take(key)], clock.nowMs(), { timeoutMs: 200 });
      assert.equal(outcome?.kind, 'decided');
      assert.equal(store.counters.handoffMisses, 1);
    } finally {
      await store.close();
    }
  });

  it('stops reading previous owners once the handoff window ends, and closes the clients no ring uses', async () => {
    const extra = await RedisServer.start();
    const [a] = servers as [RedisServer];
    const clock = new FakeClock(Date.now());
    const clients = await connect({ a, retired: extra });
    const store = new RedisShardStore({ shards: clients, clock, keyPrefix: 'window:', handoffMs: 1000 });
    try {
      store.reshard(new Map([...clients].filter(([name]) => name === 'a')));
      const key = keyMovingTo('a', ['a', 'retired'], ['a']);
      clock.advance(1000);
      await store.commit([take(key)], clock.nowMs());
      assert.equal(store.counters.handoffs, 0);
      const retired = clients.get('retired') as Redis;
      await new Promise((closed) => (retired.status === 'end' ? closed(undefined) : retired.once('end', closed)));
    } finally {
      await store.close();
      await extra.kill();
    }
  });
});
