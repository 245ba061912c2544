import assert from 'node:assert/strict';
import { pino } from 'pino';
import { connectShards } from '../../../../src/store/redis/connect-shards';
import { RedisShardStore } from '../../../../src/store/redis/redis-shard-store';
import { describeStoreContract } from '../../../contract/store.contract';
import { FakeClock } from '../../../support/fake-clock';
import { RedisServer, startShards, stopAll } from '../../../support/redis-server';

const silent = pino({ level: 'silent' });

async function makeShardStore(servers: readonly RedisServer[], clock: FakeClock, keyPrefix = `t${Date.now()}-${Math.random()}:`) {
  const shards = servers.map((server, index) => ({ name: `shard-${index}`, url: server.url() }));
  const clients = await connectShards({ shards, commandTimeoutMs: 1000, logger: silent });
  return new RedisShardStore({ shards: clients, clock, keyPrefix });
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
