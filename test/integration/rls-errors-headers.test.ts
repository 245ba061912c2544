import assert from 'node:assert/strict';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { d, request } from '../support/rls-client';
import { fixtureText } from '../support/rules';
import { Code } from '../support/status';
import { startTestServer, type TestServer } from '../support/test-server';

describe('ShouldRateLimit over gRPC: errors', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'basic.yaml': fixtureText('basic.yaml') });
  });
  after(() => server.stop());

  it('answers INVALID_ARGUMENT naming the field for an empty domain (G43)', async () => {
    const error = await server.client.callError(request('', [d(['hello', 'world'])]));
    assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT);
    assert.equal(error.details, 'domain: rate limit domain must not be empty');
  });

  it('answers INVALID_ARGUMENT naming the field for no descriptors (G44)', async () => {
    const error = await server.client.callError(request('test-domain', []));
    assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT);
    assert.equal(error.details, 'descriptors: rate limit descriptor list must not be empty');
  });

  it('answers INVALID_ARGUMENT for an override with unit UNKNOWN, where the reference crashes', async () => {
    const message = request('test-domain', [{ entries: [['key2', 'x']], limit: { requests_per_unit: 5, unit: 0 } }]);
    const error = await server.client.callError(message);
    assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT);
    assert.match(error.details, /^descriptors\[0\]\.limit\.unit: /);
  });

  it('keeps serving after bad requests', async () => {
    const response = await server.client.call('test-domain', [d(['key2', 'after-errors'])]);
    assert.equal(response.overall_code, Code.OK);
  });
});

describe('ShouldRateLimit over gRPC: no config loaded (G45)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'broken.yaml': 'domain: [unclosed\n' });
  });
  after(() => server.stop());

  it('answers UNAVAILABLE so that failure_mode_deny decides, never OK or UNKNOWN', async () => {
    const error = await server.client.callError(request('test-domain', [d(['key2', 'x'])]));
    assert.equal(error.code, GrpcStatus.UNAVAILABLE);
    assert.equal(error.details, 'no rate limit configuration loaded');
  });
});

describe('ShouldRateLimit over gRPC: response headers and global shadow mode', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(
      { 'basic.yaml': fixtureText('basic.yaml') },
      { LIMIT_RESPONSE_HEADERS_ENABLED: 'true', LIMIT_LIMIT_HEADER: 'A-Ratelimit-Limit', SHADOW_MODE: 'true' },
    );
  });
  after(() => server.stop());

  it('returns the headers of the over-limit descriptor, even when shadow mode answers OK (H49, D31)', async () => {
    server.clock.set(2222_000);
    await server.client.call('test-domain', [d(['key3', 'h49'])]);
    const response = await server.client.call('test-domain', [d(['key3', 'h49']), d(['no', 'match'])]);
    assert.equal(response.overall_code, Code.OK, 'global shadow mode answers OK overall');
    assert.equal(response.statuses[0]?.code, Code.OVER_LIMIT, 'statuses are not rewritten');
    assert.deepEqual(
      response.response_headers_to_add.map(({ key, value }) => [key, value]),
      [['A-Ratelimit-Limit', '1'], ['RateLimit-Remaining', '0'], ['RateLimit-Reset', '3600']],
    );
  });

  it('picks the descriptor with the fewest remaining and adds nothing when none is limited (H50)', async () => {
    const response = await server.client.call('test-domain', [d(['key2', 'h50']), d(['key1', 'value1'], ['subkey1', 'h50'])]);
    assert.deepEqual(
      response.response_headers_to_add.map(({ key, value }) => [key, value]),
      [['A-Ratelimit-Limit', '5'], ['RateLimit-Remaining', '4'], ['RateLimit-Reset', '1']],
    );
    const none = await server.client.call('test-domain', [d(['key6', 'x']), d(['no', 'match'])]);
    assert.deepEqual(none.response_headers_to_add, []);
  });
});
