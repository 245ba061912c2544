import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { d, request } from '../support/rls-client';
import { RedisServer, startShards, stopAll } from '../support/redis-server';
import { Code } from '../support/status';
import { startTestServer, type TestServer } from '../support/test-server';

const RULES = {
  'shared.yaml': `domain: shared
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 10}
  - key: tenant
    rate_limits:
      - {unit: second, requests_per_unit: 5, name: tenant_second}
      - {unit: day, requests_per_unit: 8, name: tenant_day}
`,
};

function shardsEnv(servers: readonly RedisServer[], prefix: string): Record<string, string> {
  return {
    REDIS_SHARDS: servers.map((server, index) => `shard-${index}=${server.url()}`).join(','),
    REDIS_KEY_PREFIX: prefix,
    REDIS_COMMAND_TIMEOUT_MS: '200',
  };
}

describe('ringlimit on Redis shards', function () {
  this.timeout(30_000);
  let servers: RedisServer[] = [];
  let instances: TestServer[] = [];
  let prefixCount = 0;
  before(async () => {
    servers = await startShards(3);
  });
  after(() => stopAll(servers));
  afterEach(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    instances = [];
  });

  const startInstances = async (count: number, extraEnv: Record<string, string> = {}): Promise<TestServer[]> => {
    const env = { ...shardsEnv(servers, `it${++prefixCount}:`), ...extraEnv };
    instances = await Promise.all(Array.from({ length: count }, () => startTestServer(RULES, env)));
    for (const instance of instances) instance.clock.set(Date.now());
    return instances;
  };

  it('lets two instances enforce one limit together: exactly the capacity is admitted', async () => {
    const [east, west] = await startInstances(2);
    const calls = Array.from({ length: 40 }, (_, index) =>
      ((index % 2 === 0 ? east : west) as TestServer).client.call('shared', [d(['user', 'alice'])]),
    );
    const responses = await Promise.all(calls);
    const admitted = responses.filter((response) => response.overall_code === Code.OK).length;
    assert.equal(admitted, 10);
  });

  it('keeps a rule’s several limits atomic across instances', async () => {
    const [east, west] = await startInstances(2);
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) => ((index % 2 === 0 ? east : west) as TestServer).client.call('shared', [d(['tenant', 't1'])])),
    );
    assert.equal(responses.filter((response) => response.overall_code === Code.OK).length, 5, 'the per-second limit admits 5');
    for (const instance of [east, west] as TestServer[]) instance.clock.advance(1000);
    const later = await Promise.all(Array.from({ length: 10 }, () => (east as TestServer).client.call('shared', [d(['tenant', 't1'])])));
    assert.equal(later.filter((response) => response.overall_code === Code.OK).length, 3, 'the day limit of 8 had 3 left');
  });

  it('answers a request id retried on another instance with the first answer, consuming nothing', async () => {
    const [east, west] = await startInstances(2);
    const message = request('shared', [d(['user', 'retried'])]);
    const first = await (east as TestServer).client.send(message, 2000, 'req-7f3a');
    const retried = await (west as TestServer).client.send(message, 2000, 'req-7f3a');
    assert.deepEqual(retried, first);
    const next = await (west as TestServer).client.send(message, 2000, 'req-8b1c');
    assert.equal(next.statuses[0]?.limit_remaining, 8, 'only two requests consumed');
  });

  it('spreads buckets over every shard and writes records that expire', async () => {
    const [instance] = await startInstances(1);
    const prefix = `it${prefixCount}:`;
    for (let index = 0; index < 60; index++) await (instance as TestServer).client.call('shared', [d(['user', `spread-${index}`])]);
    const perShard = await Promise.all(
      servers.map(async (server) => {
        const client = new Redis(server.url());
        try {
          const keys = (await client.keys(`${prefix}*`)).filter((key) => !key.startsWith(`${prefix}idem|`));
          const ttls = await Promise.all(keys.map((key) => client.pttl(key)));
          assert.ok(ttls.every((ttl) => ttl > 0), 'every record has an expiry');
          return keys.length;
        } finally {
          client.disconnect();
        }
      }),
    );
    assert.equal(perShard.reduce((sum, count) => sum + count, 0), 60);
    for (const count of perShard) assert.ok(count > 5, `each shard holds some buckets: ${perShard.join(', ')}`);
  });

  it('answers a dead shard’s buckets from local fallback buckets at once, while other shards answer as usual', async () => {
    const extra = await RedisServer.start();
    const env = {
      REDIS_SHARDS: [...servers, extra].map((server, index) => `shard-${index}=${server.url()}`).join(','),
      REDIS_KEY_PREFIX: `dead${++prefixCount}:`,
      REDIS_COMMAND_TIMEOUT_MS: '200',
    };
    instances = [await startTestServer(RULES, env)];
    const instance = instances[0] as TestServer;
    instance.clock.set(Date.now());
    await extra.kill();
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, async (_, index) => {
        const startedMs = Date.now();
        const response = await instance.client.call('shared', [d(['user', `dead-${index}`])], 0, 1000);
        return { code: response.overall_code, ms: Date.now() - startedMs };
      }),
    );
    assert.ok(outcomes.every((outcome) => outcome.code === Code.OK), 'every bucket answered, fresh buckets admit');
    assert.ok(outcomes.every((outcome) => outcome.ms < 500), `no call waited long: ${Math.max(...outcomes.map((outcome) => outcome.ms))} ms`);
    const fallbacks = instance.app.counters()?.fallbackDecisions ?? 0;
    assert.ok(fallbacks > 0 && fallbacks < 40, `some buckets (those of the dead shard) fell back: ${fallbacks}`);
  });
});
