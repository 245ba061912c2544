import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { healthCheck } from '../support/grpc-health';
import { startTestServer, type TestServer } from '../support/test-server';
import { d } from '../support/rls-client';
import { Code } from '../support/status';

const RULES = {
  'api.yaml': `domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: tiered
    rate_limits:
      - {unit: second, requests_per_unit: 2}
      - {unit: hour, requests_per_unit: 3}
  - key: plan
    detailed_metric: true
    rate_limit: {unit: hour, requests_per_unit: 5, name: plan_hourly}
`,
};
const ADMIN = { authorization: 'Bearer let-me-in' };

/** Counter values of a Prometheus text exposition, by `name{labels}` as printed. */
function samples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(\w+(?:\{[^}]*\})?) ([\d.e+-]+)$/.exec(line);
    if (match !== null) values.set(match[1] as string, Number(match[2]));
  }
  return values;
}

describe('HTTP API on the memory store', function () {
  this.timeout(20_000);
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer(RULES, { ADMIN_TOKEN: 'let-me-in', HTTP_MAX_BODY_BYTES: '2048' });
  });
  afterEach(() => server.stop());

  describe('POST /rate', () => {
    it('admits while tokens last, then denies with how long to wait, and refills with time', async () => {
      const ask = { bucket_id: 'checkout', capacity: 3, refill_rate: 0.5, tokens_requested: 2 };
      assert.deepEqual((await server.http('POST', '/rate', ask)).json, { allowed: true, remaining: 1, retry_after_ms: 0, reset_after_ms: 4000 });
      const denied = await server.http('POST', '/rate', ask);
      assert.equal(denied.status, 200);
      assert.deepEqual(denied.json, { allowed: false, remaining: 1, retry_after_ms: 2000, reset_after_ms: 4000 });
      server.clock.advance(2000);
      assert.equal((await server.http('POST', '/rate', ask)).json.allowed, true, 'one token came back in 2 s at 0.5/s');
    });

    it('answers a repeated request_id with the first answer and consumes nothing', async () => {
      const ask = { bucket_id: 'idem', capacity: 2, refill_rate: 1, tokens_requested: 1, request_id: 'order-17' };
      const first = await server.http('POST', '/rate', ask);
      const again = await server.http('POST', '/rate', ask);
      assert.deepEqual(again.json, first.json);
      assert.equal((await server.http('POST', '/rate', { ...ask, request_id: 'order-18' })).json.remaining, 0, 'only the first of the two consumed');
    });

    it('refuses bad input with 400 naming the field, and creates no bucket for it', async () => {
      const good = { bucket_id: 'b', capacity: 5, refill_rate: 1, tokens_requested: 1 };
      const cases: [unknown, string][] = [
        [{ ...good, bucket_id: undefined }, 'bucket_id'],
        [{ ...good, bucket_id: '' }, 'bucket_id'],
        [{ ...good, bucket_id: 'x'.repeat(600) }, 'bucket_id'],
        [{ ...good, capacity: 'lots' }, 'capacity'],
        [{ ...good, capacity: 0 }, 'capacity'],
        [{ ...good, capacity: 2.5 }, 'capacity'],
        [{ ...good, refill_rate: -1 }, 'refill_rate'],
        [{ ...good, tokens_requested: 6 }, 'tokens_requested'],
        [{ ...good, tokens_requested: 0 }, 'tokens_requested'],
        [{ ...good, colour: 'blue' }, 'colour'],
        ['{"bucket_id": ', 'body'],
        ['[1, 2]', 'body'],
      ];
      for (const [body, field] of cases) {
        const answer = await server.http('POST', '/rate', body);
        assert.equal(answer.status, 400, JSON.stringify(body));
        assert.equal(answer.json.field, field, `${JSON.stringify(body)} → ${answer.text}`);
        assert.equal(typeof answer.json.error, 'string');
      }
      assert.equal((await server.http('GET', '/bucket/status?key=b')).json.exists, false);
    });

    it('answers 413 to a body over HTTP_MAX_BODY_BYTES, 415 to a non-JSON type, 405 to another method, 404 elsewhere', async () => {
      const huge = await server.http('POST', '/rate', { bucket_id: 'x'.repeat(4000), capacity: 1, refill_rate: 1 });
      assert.equal(huge.status, 413);
      assert.match(String(huge.json.error), /2048/);
      assert.equal((await server.http('POST', '/rate', '<rate/>', { 'content-type': 'application/xml' })).status, 415);
      const wrongMethod = await server.http('GET', '/rate');
      assert.equal(wrongMethod.status, 405);
      assert.equal(wrongMethod.headers.get('allow'), 'POST');
      assert.equal((await server.http('GET', '/nowhere')).status, 404);
    });

    it('answers 413 without reading a chunked body to its end', async () => {
      const status = await new Promise<number>((resolveStatus, reject) => {
        const call = httpRequest({ host: '127.0.0.1', port: server.httpPort, method: 'POST', path: '/rate', headers: { 'content-type': 'application/json' } }, (response) => {
          response.resume();
          resolveStatus(response.statusCode ?? 0);
        });
        call.on('error', reject);
        call.write(`{"bucket_id": "${'y'.repeat(5000)}`);
      });
      assert.equal(status, 413);
    });
  });

  it('GET /bucket/status shows tokens, capacity, rate, version and shard', async () => {
    await server.http('POST', '/rate', { bucket_id: 'seen', capacity: 10, refill_rate: 2, tokens_requested: 4 });
    const status = await server.http('GET', '/bucket/status?key=seen');
    assert.deepEqual({ ...status.json, updated_at_ms: 0 }, {
      bucket_id: 'seen',
      shard: 'memory',
      exists: true,
      version: 1,
      tokens: 6,
      stored_tokens: 6,
      updated_at_ms: 0,
      capacity: 10,
      refill_rate: 2,
    });
    assert.equal((await server.http('GET', '/bucket/status')).json.field, 'key');
  });

  describe('POST /json', () => {
    it('answers a RateLimitRequest in protojson: 200 while OK, 429 once over the limit', async () => {
      const body = { domain: 'api', descriptors: [{ entries: [{ key: 'user', value: 'ann' }] }] };
      const first = await server.http('POST', '/json', body);
      assert.equal(first.status, 200);
      assert.deepEqual(first.json, {
        overallCode: 'OK',
        statuses: [{ code: 'OK', currentLimit: { requestsPerUnit: 2, unit: 'MINUTE' }, limitRemaining: 1, durationUntilReset: '30s' }],
      });
      await server.http('POST', '/json', body);
      const over = await server.http('POST', '/json', { ...body, hits_addend: 1 });
      assert.equal(over.status, 429);
      assert.equal(over.json.overallCode, 'OVER_LIMIT');
    });

    it('takes snake_case and camelCase names and refuses what RLS does not know, naming the field', async () => {
      const snake = await server.http('POST', '/json', { domain: 'api', descriptors: [{ entries: [{ key: 'plan', value: 'x' }], hits_addend: 2 }] });
      assert.equal((snake.json.statuses as { limitRemaining: number }[])[0]?.limitRemaining, 3);
      const camel = await server.http('POST', '/json', { domain: 'api', descriptors: [{ entries: [{ key: 'plan', value: 'x' }], hitsAddend: 1 }] });
      assert.equal((camel.json.statuses as { limitRemaining: number }[])[0]?.limitRemaining, 2);
      const cases: [unknown, string][] = [
        [{ domain: 'api', descriptors: [{ entries: [{ key: 'user', value: 'a', extra: 1 }] }] }, 'descriptors[0].entries[0].extra'],
        [{ domain: '', descriptors: [{ entries: [{ key: 'user', value: 'a' }] }] }, 'domain'],
        [{ domain: 'api', descriptors: [] }, 'descriptors'],
        [{ domain: 'api', descriptors: [{ entries: [], limit: { requestsPerUnit: 1, unit: 'FORTNIGHT' } }] }, 'limit.unit'],
        [{ domain: 'api', hitsAddend: -1, descriptors: [{ entries: [] }] }, 'hitsAddend'],
      ];
      for (const [body, field] of cases) {
        const answer = await server.http('POST', '/json', body);
        assert.equal(answer.status, 400, JSON.stringify(body));
        assert.equal(answer.json.field, field, answer.text);
      }
    });
  });

  it('GET /rlconfig prints the loaded rules', async () => {
    const answer = await server.http('GET', '/rlconfig');
    assert.equal(answer.status, 200);
    assert.match(answer.text, /^api\.user: unit=MINUTE requests_per_unit=2, shadow_mode: false, quota_mode: false/m);
    assert.match(answer.text, /^api\.plan: unit=HOUR requests_per_unit=5, .* name=plan_hourly$/m);
  });

  it('GET /healthz and /healthcheck answer 200 with the detail while serving, and the gRPC health service agrees', async () => {
    const health = await server.http('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(health.json, {
      serving: true,
      region: 'local',
      config: { loaded: true, domains: 1 },
      store: { kind: 'memory', ok: true, shards: [] },
      shuttingDown: false,
    });
    assert.equal((await server.http('GET', '/healthcheck')).text, 'OK');
    assert.equal(await healthCheck(server.port, 'ratelimit'), 'SERVING');
  });

  it('GET /metrics counts calls and verdicts by domain and outcome after a known sequence', async () => {
    for (let call = 0; call < 3; call++) await server.client.call('api', [d(['user', 'metered'])]);
    await server.http('POST', '/json', { domain: 'api', descriptors: [{ entries: [{ key: 'plan', value: 'p' }] }] });
    await server.client.call('nowhere', [d(['user', 'x'])]);
    await server.http('POST', '/rate', { bucket_id: 'm', capacity: 1, refill_rate: 1 });
    await server.http('POST', '/rate', { bucket_id: 'm', capacity: 1, refill_rate: 1 });
    await server.http('POST', '/json', { domain: '', descriptors: [] });
    const answer = await server.http('GET', '/metrics');
    assert.equal(answer.status, 200);
    const values = samples(answer.text);
    const expected: Record<string, number> = {
      'ringlimit_rate_requests_total{domain="api",outcome="ok"}': 3,
      'ringlimit_rate_requests_total{domain="api",outcome="over_limit"}': 1,
      'ringlimit_rate_requests_total{domain="unknown",outcome="ok"}': 1,
      'ringlimit_rate_requests_total{domain="unknown",outcome="error"}': 1,
      'ringlimit_rate_requests_total{domain="rate_api",outcome="ok"}': 1,
      'ringlimit_rate_requests_total{domain="rate_api",outcome="over_limit"}': 1,
      'ringlimit_rate_allowed_total{domain="api",outcome="allowed"}': 2,
      'ringlimit_rate_allowed_total{domain="api",outcome="over_limit"}': 1,
      'ringlimit_rate_allowed_total{domain="api",outcome="allowed",rule="api.plan"}': 1,
    };
    for (const [sample, value] of Object.entries(expected)) assert.equal(values.get(sample), value, `${sample} in\n${answer.text}`);
    assert.ok(![...values.keys()].some((sample) => sample.includes('rule="api.user"')), 'rule labels only for detailed_metric rules');
  });

  describe('admin API', () => {
    it('refuses calls without a token (401), with a wrong one (403), and is off without ADMIN_TOKEN (404)', async () => {
      const body = { rule: 'api.user', requests_per_unit: 10, ttl_seconds: 60 };
      const none = await server.http('POST', '/admin/overrides', body);
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="ringlimit-admin"');
      assert.equal((await server.http('POST', '/admin/overrides', body, { authorization: 'Bearer guess' })).status, 403);
      assert.equal((await server.http('GET', '/admin/overrides', undefined, { authorization: 'Basic bGV0LW1lLWlu' })).status, 401);
      const off = await startTestServer(RULES);
      try {
        assert.equal((await off.http('GET', '/admin/overrides', undefined, ADMIN)).status, 404);
      } finally {
        await off.stop();
      }
    });

    it('overrides a rule until the expiry, then the configured limit is back', async () => {
      const call = async (): Promise<number> => (await server.client.call('api', [d(['user', 'spike'])])).overall_code;
      const set = await server.http('POST', '/admin/overrides', { rule: 'api.user', requests_per_unit: 4, ttl_seconds: 60 }, ADMIN);
      assert.equal(set.status, 201, set.text);
      assert.deepEqual((await server.http('GET', '/admin/overrides', undefined, ADMIN)).json.overrides, [set.json]);
      const during = [];
      for (let index = 0; index < 5; index++) during.push(await call());
      assert.deepEqual(during, [Code.OK, Code.OK, Code.OK, Code.OK, Code.OVER_LIMIT], '4 a minute while the override lasts');
      server.clock.advance(61_000);
      const after = [];
      for (let index = 0; index < 3; index++) after.push(await call());
      assert.deepEqual(after, [Code.OK, Code.OK, Code.OVER_LIMIT], 'back to 2 a minute');
      assert.deepEqual((await server.http('GET', '/admin/overrides', undefined, ADMIN)).json.overrides, []);
    });

    it('overrides one /rate bucket, ends an override on DELETE, and refuses bad overrides naming the field', async () => {
      await server.http('POST', '/admin/overrides', { bucket_id: 'vip', capacity: 10, ttl_seconds: 60 }, ADMIN);
      assert.equal((await server.http('POST', '/rate', { bucket_id: 'vip', capacity: 1, refill_rate: 1, tokens_requested: 8 })).json.allowed, true);
      assert.equal((await server.http('DELETE', '/admin/overrides', { bucket_id: 'vip' }, ADMIN)).status, 200);
      assert.equal((await server.http('DELETE', '/admin/overrides', { bucket_id: 'vip' }, ADMIN)).status, 404);
      const cases: [unknown, string][] = [
        [{ capacity: 5, ttl_seconds: 5 }, 'bucket_id'],
        [{ bucket_id: 'a', rule: 'b', capacity: 5, ttl_seconds: 5 }, 'bucket_id'],
        [{ bucket_id: 'a', ttl_seconds: 5 }, 'capacity'],
        [{ bucket_id: 'a', capacity: -5, ttl_seconds: 5 }, 'capacity'],
        [{ bucket_id: 'a', capacity: 5 }, 'ttl_seconds'],
        [{ bucket_id: 'a', capacity: 5, ttl_seconds: 86_400 * 30 }, 'ttl_seconds'],
        [{ bucket_id: 'a', capacity: 5, ttl_seconds: 5, unit: 'fortnight' }, 'unit'],
      ];
      for (const [body, field] of cases) {
        const answer = await server.http('POST', '/admin/overrides', body, ADMIN);
        assert.equal(answer.status, 400, JSON.stringify(body));
        assert.equal(answer.json.field, field, answer.text);
      }
    });

    it('changes only the limit of the unit given, when a rule has several', async () => {
      const set = await server.http('POST', '/admin/overrides', { rule: 'api.tiered', unit: 'SECOND', requests_per_unit: 10, ttl_seconds: 60 }, ADMIN);
      assert.equal(set.json.unit, 'second');
      const codes = [];
      for (let index = 0; index < 5; index++) codes.push((await server.client.call('api', [d(['tiered', 't'])])).overall_code);
      assert.deepEqual(codes, [Code.OK, Code.OK, Code.OK, Code.OVER_LIMIT, Code.OVER_LIMIT], 'the hourly limit of 3 still holds; the per-second one would have stopped at 2');
    });

    it('resets a bucket to full, and pre-warms buckets', async () => {
      const ask = { bucket_id: 'r', capacity: 1, refill_rate: 0.001 };
      await server.http('POST', '/rate', ask);
      assert.equal((await server.http('POST', '/rate', ask)).json.allowed, false);
      assert.deepEqual((await server.http('POST', '/admin/reset', { bucket_id: 'r' }, ADMIN)).json, { reset: 1 });
      assert.equal((await server.http('POST', '/rate', ask)).json.allowed, true);
      await server.client.call('api', [d(['user', 'warm'])]);
      const warmed = await server.http('POST', '/admin/prewarm', { buckets: [{ bucket_id: 'r' }, { bucket_id: 'none' }, { descriptor: { domain: 'api', entries: [{ key: 'user', value: 'warm' }] } }] }, ADMIN);
      assert.deepEqual(warmed.json, { requested: 3, existing: 2 });
      assert.equal((await server.http('POST', '/admin/prewarm', { buckets: [] }, ADMIN)).json.field, 'buckets');
    });
  });
});
