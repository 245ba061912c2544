import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { RuleSet } from '../../src/config/rule-set';
import { RateLimiter } from '../../src/limiter/rate-limiter';
import { ControlPlane } from '../../src/limiter/control-plane';
import { MemoryBucketStore } from '../../src/store/memory-store';
import { connectShards } from '../../src/store/redis/connect-shards';
import { RedisOverrideStore } from '../../src/store/redis/redis-override-store';
import { RedisShardStore } from '../../src/store/redis/redis-shard-store';
import { FakeClock } from '../support/fake-clock';
import { startShards, stopAll, type RedisServer } from '../support/redis-server';
import { compileYaml } from '../support/rules';

/** A full garbage collection, so heap figures are what is retained, not what is waiting to be collected. */
function collectGarbage(): void {
  setFlagsFromString('--expose_gc');
  (runInNewContext('gc') as () => void)();
}

const RULES = compileYaml('domain: flood\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 10}\n');

describe('key floods', function () {
  this.timeout(120_000);

  it('keeps a million distinct keys within MEMORY_STORE_MAX_BUCKETS and bounded memory', async () => {
    const clock = new FakeClock(Date.now());
    const store = new MemoryBucketStore({ clock, maxBuckets: 100_000 });
    const limiter = new RateLimiter({ store, clock, rules: (): RuleSet => RULES });
    collectGarbage();
    const heapBefore = process.memoryUsage().heapUsed;
    let peakBuckets = 0;
    for (let index = 0; index < 1_000_000; index++) {
      const outcome = await limiter.shouldRateLimit({ domain: 'flood', descriptors: [{ entries: [{ key: 'user', value: `flood-${index}` }] }], hits: 0 });
      assert.equal(outcome.overallCode, 'OK');
      if (index % 50_000 === 0) peakBuckets = Math.max(peakBuckets, store.size);
    }
    collectGarbage();
    const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    console.log(`      1,000,000 keys: ${store.size} buckets kept (cap 100,000), ${store.evictions} evicted, heap retained ${grownMb.toFixed(1)} MB more`);
    assert.ok(store.size <= 100_000 && peakBuckets <= 100_000);
    assert.equal(store.evictions, 900_000);
    assert.ok(grownMb < 150, `heap growth ${grownMb.toFixed(1)} MB`);
  });

  describe('on Redis', () => {
    let servers: RedisServer[] = [];
    before(async () => {
      servers = await startShards(2);
    });
    after(() => stopAll(servers));

    it('leaves no key without an expiry: buckets, request ids, heartbeats and overrides all expire', async () => {
      const clock = new FakeClock(Date.now());
      const shards = await connectShards({ shards: servers.map((server, index) => ({ name: `s${index}`, url: server.url() })), commandTimeoutMs: 1000, logger: pino({ level: 'silent' }) });
      const store = new RedisShardStore({ shards, clock, keyPrefix: 'flood:' });
      const limiter = new RateLimiter({ store, clock, rules: (): RuleSet => RULES, recordCacheTtlMs: 2000, idempotencyTtlMs: 60_000 });
      try {
        let next = 0;
        await Promise.all(
          Array.from({ length: 64 }, async () => {
            while (next < 20_000) {
              const index = next++;
              await limiter.shouldRateLimit({ domain: 'flood', descriptors: [{ entries: [{ key: 'user', value: `r${index}` }] }], hits: 0, requestId: index % 10 === 0 ? `req-${index}` : undefined });
            }
          }),
        );
        await limiter.rateBucket({ bucketId: 'api-flood', capacity: 5, refillPerSecond: 1, tokens: 1 });
        await store.exchangeHeartbeats('us-east', 60_000);
        await new ControlPlane(limiter, new RedisOverrideStore(store), clock).setOverride({ target: { rule: 'flood.user' }, capacity: 50, ttlMs: 30_000 });
        let keys = 0;
        const forever: string[] = [];
        for (const server of servers) {
          const client = new Redis(server.url());
          try {
            for (const key of await client.keys('flood:*')) {
              keys++;
              // -1: no expiry. (-2: it expired since KEYS listed it.)
              if ((await client.pttl(key)) === -1) forever.push(key);
            }
          } finally {
            client.disconnect();
          }
        }
        console.log(`      Redis after 20,000 distinct keys: ${keys} keys, ${forever.length} without an expiry`);
        assert.ok(keys >= 20_000);
        assert.deepEqual(forever, [], forever.join(", "));
      } finally {
        await store.close();
      }
    });
  });
});
