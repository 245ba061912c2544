import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session } from 'node:http2';
import { status, type ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';
import { MemoryBucketStore } from '../../src/store/memory-store';
import { RateLimitRequest } from '../../src/generated/envoy/service/ratelimit/v3/rls';
import { FakeClock } from '../support/fake-clock';
import { healthCheck } from '../support/grpc-health';
import { d } from '../support/rls-client';
import { Code } from '../support/status';
import { startTestServer, type TestServer } from '../support/test-server';

const RULES = { 'fuzz.yaml': 'domain: fuzz\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 5}\n' };
const LIMITS = { MAX_DESCRIPTORS_PER_REQUEST: '8', MAX_ENTRIES_PER_DESCRIPTOR: '4', MAX_VALUE_LENGTH: '64', GRPC_MAX_MESSAGE_BYTES: '65536', HTTP_MAX_BODY_BYTES: '65536' };
/** What bad input may get: an answer, or an error that names it as the caller's. */
const ACCEPTABLE = new Set([status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED]);

/** One gRPC call with raw bytes as its message, over HTTP/2 as grpc-js would send it; resolves with grpc-status. */
function rawCall(session: ClientHttp2Session, message: Buffer, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolveStatus, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit', 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let grpcStatus: string | undefined;
    stream.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
    });
    stream.on('trailers', (trailers) => {
      grpcStatus = String(trailers['grpc-status']);
    });
    stream.on('data', () => undefined);
    stream.on('close', () => (grpcStatus === undefined ? reject(new Error('no grpc-status')) : resolveStatus(Number(grpcStatus))));
    stream.on('error', reject);
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    stream.end(frame);
  });
}

describe('bad input: fuzzed gRPC and HTTP requests get an answer or a clear error, never a crash or a stray bucket', function () {
  this.timeout(60_000);
  let server: TestServer;
  let store: MemoryBucketStore;

  before(async () => {
    const clock = new FakeClock();
    store = new MemoryBucketStore({ clock, maxBuckets: 100_000 });
    server = await startTestServer(RULES, LIMITS, { store, clock });
  });
  after(() => server.stop());

  afterEach(async () => {
    // Whatever came before, the server still answers well-formed calls and says it is healthy.
    assert.equal(await healthCheck(server.port, 'ratelimit'), 'SERVING');
    assert.equal((await server.client.call('fuzz', [d(['user', 'after'])])).overall_code, Code.OK);
  });

  it('refuses requests over the size limits with INVALID_ARGUMENT naming the field, and creates no bucket', async () => {
    const cases: [Parameters<typeof server.client.call>[1], string, string][] = [
      [Array.from({ length: 9 }, (_, index) => d(['user', `many-${index}`])), 'descriptors', 'at most 8 descriptors'],
      [Array.from({ length: 2000 }, (_, index) => d(['user', `flood-${index}`])), 'descriptors', 'at most 8 descriptors'],
      [[d(...Array.from({ length: 3000 }, (_, index) => [`k${index}`, 'v'] as const))], 'descriptors[0].entries', 'at most 4 entries'],
      [[d(['user', 'a'], ['b', 'c'], ['d', 'e'], ['f', 'g'], ['h', 'i'])], 'descriptors[0].entries', 'at most 4 entries'],
      [[d(['user', 'v'.repeat(65)])], 'descriptors[0].entries[0].value', 'at most 64 characters'],
      [[d(['k'.repeat(65), 'v'])], 'descriptors[0].entries[0].key', 'at most 64 characters'],
    ];
    for (const [descriptors, field, problem] of cases) {
      const before = store.size;
      const error = await server.client.call('fuzz', descriptors).then(
        () => assert.fail(`accepted ${field}`),
        (rejection: ServiceError) => rejection,
      );
      assert.equal(error.code, status.INVALID_ARGUMENT, field);
      assert.ok(error.details.includes(field) && error.details.includes(problem), error.details);
      assert.equal(store.size, before, 'no bucket for a refused request');
    }
    const longDomain = await server.client.call('d'.repeat(65), [d(['user', 'x'])]).catch((rejection: ServiceError) => rejection);
    assert.equal((longDomain as ServiceError).code, status.INVALID_ARGUMENT);
  });

  it('answers fuzzed RateLimitRequests with OK, OVER_LIMIT, INVALID_ARGUMENT or RESOURCE_EXHAUSTED', async () => {
    const text = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 80 }), fc.constant(''), fc.constantFrom('user', 'fuzz'));
    const entry = fc.tuple(text, text);
    const descriptor = fc.record({ entries: fc.array(entry, { maxLength: 6 }), hits_addend: fc.option(fc.nat({ max: 2 ** 32 - 1 }), { nil: undefined }) });
    await fc.assert(
      fc.asyncProperty(fc.oneof(text, fc.constant('fuzz')), fc.array(descriptor, { maxLength: 12 }), fc.nat({ max: 2 ** 32 - 1 }), async (domain, descriptors, hits) => {
        const before = store.size;
        try {
          const response = await server.client.call(domain, descriptors.map(({ entries, hits_addend }) => ({ entries, ...(hits_addend === undefined ? {} : { hits_addend }) })), hits);
          assert.ok([Code.OK, Code.OVER_LIMIT].includes(response.overall_code));
        } catch (error) {
          const { code, details } = error as ServiceError;
          assert.ok(ACCEPTABLE.has(code), `code ${code}: ${details}`);
          assert.ok(details.length > 0);
          assert.equal(store.size, before, 'no bucket for a refused request');
        }
      }),
      { numRuns: 150, seed: 20261124 },
    );
  });

  it('answers malformed and oversized protobuf messages with INVALID_ARGUMENT and RESOURCE_EXHAUSTED', async () => {
    const session = connect(`http://127.0.0.1:${server.port}`);
    try {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
          const grpcStatus = await rawCall(session, Buffer.from(bytes));
          assert.ok(grpcStatus === status.OK || grpcStatus === status.INVALID_ARGUMENT, `grpc-status ${grpcStatus}`);
        }),
        { numRuns: 200, seed: 42 },
      );
      // A field tag with a length running past the end of the message: certainly not a RateLimitRequest.
      assert.equal(await rawCall(session, Buffer.from([0x0a, 0xff, 0x01, 0x61])), status.INVALID_ARGUMENT);
      const huge = Buffer.from(RateLimitRequest.encode({ domain: 'fuzz', descriptors: [{ entries: [{ key: 'user', value: 'x'.repeat(70_000) }], limit: undefined, hits_addend: undefined }], hits_addend: 0 }).finish());
      assert.equal(await rawCall(session, huge), status.RESOURCE_EXHAUSTED);
      // A call whose deadline has passed by the time it is handled is not decided (and consumes nothing).
      const before = store.size;
      const valid = Buffer.from(RateLimitRequest.encode({ domain: 'fuzz', descriptors: [{ entries: [{ key: 'user', value: 'too-late' }], limit: undefined, hits_addend: undefined }], hits_addend: 0 }).finish());
      assert.equal(await rawCall(session, valid, { 'grpc-timeout': '1n' }), status.DEADLINE_EXCEEDED);
      assert.equal(store.size, before);
    } finally {
      session.close();
    }
  });

  it('answers fuzzed HTTP bodies with 2xx/4xx and a JSON error, never 5xx', async () => {
    const body = fc.oneof(
      fc.json({ maxDepth: 3 }),
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
      fc.record({ bucket_id: fc.string({ maxLength: 100 }), capacity: fc.oneof(fc.integer(), fc.double(), fc.string()), refill_rate: fc.oneof(fc.double(), fc.string()), tokens_requested: fc.oneof(fc.integer(), fc.constant(null)) }).map((value) => JSON.stringify(value)),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/rate', '/json'), body, fc.constantFrom('application/json', 'text/plain', 'application/octet-stream'), async (path, text, type) => {
        const answer = await server.http('POST', path, text, { 'content-type': type });
        assert.ok(answer.status < 500, `${path} answered ${answer.status}: ${answer.text}`);
        if (answer.status >= 400) assert.equal(typeof answer.json.error, 'string', answer.text);
      }),
      { numRuns: 150, seed: 7 },
    );
    const tooBig = await server.http('POST', '/json', JSON.stringify({ domain: 'fuzz', descriptors: [{ entries: [{ key: 'user', value: 'x'.repeat(70_000) }] }] }));
    assert.equal(tooBig.status, 413);
  });
});
