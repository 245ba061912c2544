import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { healthCheck } from '../support/grpc-health';
import { makeTempDir } from '../support/paths';
import { RingLimitProcess } from '../support/ringlimit-process';
import { RedisServer, startShards, stopAll } from '../support/redis-server';
import { d, RlsTestClient } from '../support/rls-client';
import { Code } from '../support/status';
import { startTestServer, type TestServer } from '../support/test-server';

const RULES = { 'api.yaml': 'domain: api\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 2}\n' };
const ADMIN = { authorization: 'Bearer ops-token' };

async function eventually(check: () => Promise<boolean>, what: string, budgetMs = 5000): Promise<void> {
  const startedMs = Date.now();
  while (!(await check())) {
    if (Date.now() - startedMs > budgetMs) throw new Error(`not seen within ${budgetMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('HTTP API on Redis shards, two instances in two regions', function () {
  this.timeout(30_000);
  let shards: RedisServer[] = [];
  let east: TestServer;
  let west: TestServer;
  let prefixCount = 0;

  before(async () => {
    shards = await startShards(2);
  });
  after(() => stopAll(shards));
  beforeEach(async () => {
    const env = {
      REDIS_SHARDS: shards.map((server, index) => `shard-${index}=${server.url()}`).join(','),
      REDIS_KEY_PREFIX: `http${++prefixCount}:`,
      ADMIN_TOKEN: 'ops-token',
    };
    east = await startTestServer(RULES, { ...env, REGION: 'us-east' });
    west = await startTestServer(RULES, { ...env, REGION: 'eu-west' });
    // Both engines and Redis must agree on time: records expire on the shard's clock.
    for (const server of [east, west]) server.clock.set(Date.now());
  });
  afterEach(async () => {
    await Promise.all([east.stop(), west.stop()]);
  });

  it('shares /rate buckets between instances and shows the owning shard', async () => {
    const ask = { bucket_id: 'shared', capacity: 3, refill_rate: 0.01, tokens_requested: 2 };
    assert.equal((await east.http('POST', '/rate', ask)).json.allowed, true);
    const denied = (await west.http('POST', '/rate', ask)).json;
    // The two instances' clocks were set a few ms apart: the bucket may have refilled a hair.
    assert.deepEqual({ ...denied, reset_after_ms: Math.round(Number(denied.reset_after_ms) / 1000) }, { allowed: false, remaining: 1, retry_after_ms: 100_000, reset_after_ms: 200 });
    const status = await west.http('GET', '/bucket/status?key=shared');
    assert.match(String(status.json.shard), /^shard-[01]$/);
    assert.equal(status.json.version, 1);
    assert.equal(status.json.stored_tokens, 1);
    assert.equal(status.json.capacity, 3);
  });

  it('answers POST /json from the shared buckets, 429 once the other instance used them up', async () => {
    const body = { domain: 'api', descriptors: [{ entries: [{ key: 'user', value: 'json-shared' }] }] };
    assert.equal((await east.http('POST', '/json', body)).status, 200);
    assert.equal((await west.http('POST', '/json', body)).status, 200);
    const over = await east.http('POST', '/json', body);
    assert.equal(over.status, 429);
    assert.equal(over.json.overallCode, 'OVER_LIMIT');
  });

  it('applies an override set on one instance on the other too, until it expires', async () => {
    const callWest = async (user: string): Promise<number> => (await west.client.call('api', [d(['user', user])])).overall_code;
    const set = await east.http('POST', '/admin/overrides', { descriptor: { domain: 'api', entries: [{ key: 'user', value: 'spike' }] }, requests_per_unit: 5, ttl_seconds: 30 }, ADMIN);
    assert.equal(set.status, 201, set.text);
    await eventually(async () => ((await west.http('GET', '/admin/overrides', undefined, ADMIN)).json.overrides as unknown[]).length === 1, 'the override in Redis');
    // West re-reads overrides every second.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const codes = [];
    for (let index = 0; index < 6; index++) codes.push(await callWest('spike'));
    assert.deepEqual(codes, [Code.OK, Code.OK, Code.OK, Code.OK, Code.OK, Code.OVER_LIMIT], '5 a minute on the other instance');
    assert.deepEqual([await callWest('calm'), await callWest('calm'), await callWest('calm')], [Code.OK, Code.OK, Code.OVER_LIMIT], 'other descriptors keep 2 a minute');
    // A minute later the bucket is refilled: to 5 if the override still applied, to 2 if not.
    for (const server of [east, west]) server.clock.advance(61_000);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    assert.deepEqual((await west.http('GET', '/admin/overrides', undefined, ADMIN)).json.overrides, [], 'expired everywhere');
    const after = [];
    for (let index = 0; index < 4; index++) after.push(await callWest('spike'));
    assert.deepEqual(after, [Code.OK, Code.OK, Code.OVER_LIMIT, Code.OVER_LIMIT], 'back to 2 a minute');
  });

  it('turns /healthz and gRPC health to 503/NOT_SERVING while a shard is paused, and back once it answers', async () => {
    const paused = shards[1] as RedisServer;
    assert.equal((await east.http('GET', '/healthz')).status, 200);
    paused.pause();
    try {
      const down = await east.http('GET', '/healthz');
      assert.equal(down.status, 503);
      const detail = down.json.store as { ok: boolean; shards: { shard: string; ok: boolean; error?: string }[] };
      assert.equal(detail.ok, false);
      assert.deepEqual(detail.shards.map(({ shard, ok }) => ({ shard, ok })), [{ shard: 'shard-0', ok: true }, { shard: 'shard-1', ok: false }]);
      assert.match(String(detail.shards[1]?.error), /shard-1/);
      assert.equal(await healthCheck(east.port, ''), 'NOT_SERVING');
      assert.equal((await east.http('GET', '/livez')).status, 200, 'alive all the same: no restart for a Redis outage');
    } finally {
      paused.resume();
    }
    await eventually(async () => (await east.http('GET', '/healthz')).status === 200, '/healthz back to 200');
    assert.equal(await healthCheck(east.port, ''), 'SERVING');
  });

  it('exports store round trips per shard and the replication lag between the two regions', async () => {
    for (let index = 0; index < 10; index++) await east.client.call('api', [d(['user', `u${index}`])]);
    // East's copy of a bucket the west instance also writes is replaced by the shard's record: that is drift.
    for (let index = 0; index < 4; index++) await (index % 2 === 0 ? east : west).http('POST', '/rate', { bucket_id: 'drifting', capacity: 100, refill_rate: 1 });
    // Heartbeats are stamped every second by each instance.
    await new Promise((resolve) => setTimeout(resolve, 2200));
    const text = (await east.http('GET', '/metrics')).text;
    assert.match(text, /^ringlimit_store_round_trip_seconds_count\{shard="shard-0",operation="commit",outcome="ok"\} \d+$/m);
    assert.match(text, /^ringlimit_store_round_trip_seconds_count\{shard="shard-1",operation="commit",outcome="ok"\} \d+$/m);
    assert.match(text, /^ringlimit_cache_drift_ratio_count [1-9]\d*$/m);
    assert.match(text, /^ringlimit_kv_replication_lag_seconds\{source_region="eu-west",region="us-east"\} [\d.e-]+$/m);
  });
});

describe('OTLP export (OTEL_EXPORTER_OTLP_ENDPOINT)', function () {
  this.timeout(20_000);

  it('sends spans around decisions and the metrics to the collector, flushed at shutdown', async () => {
    const received: { path: string; bytes: number }[] = [];
    const collector = createServer((request, response) => {
      let bytes = 0;
      request.on('data', (chunk: Buffer) => (bytes += chunk.length));
      request.on('end', () => {
        received.push({ path: request.url ?? '', bytes });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolveListen) => collector.listen(0, '127.0.0.1', resolveListen));
    const configDir = await makeTempDir();
    await writeFile(join(configDir, 'api.yaml'), RULES['api.yaml']);
    try {
      const { process: instance, port } = await RingLimitProcess.start({
        CONFIG_DIR: configDir,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      });
      const client = new RlsTestClient(port);
      for (let index = 0; index < 3; index++) await client.call('api', [d(['user', 'traced'])]);
      client.close();
      assert.equal((await instance.stop()).code, 0);
      const paths = new Set(received.map(({ path }) => path));
      assert.ok(paths.has('/v1/traces'), `spans exported: ${[...paths].join(', ')}`);
      assert.ok(paths.has('/v1/metrics'), `metrics exported: ${[...paths].join(', ')}`);
      assert.ok(received.every(({ bytes }) => bytes > 0));
    } finally {
      collector.close();
    }
  });
});
