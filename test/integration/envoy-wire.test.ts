import assert from 'node:assert/strict';
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { RateLimitRequest, RateLimitResponse } from '../../src/generated/envoy/service/ratelimit/v3/rls';
import { request, d } from '../support/rls-client';
import { fixtureText } from '../support/rules';
import { Code, Unit } from '../support/status';
import { startTestServer, type TestServer } from '../support/test-server';

const PATH = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';

interface WireReply {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  body: Buffer;
}

/** gRPC length-prefixed message: 1 byte compressed flag, 4 bytes big-endian length, payload. */
function frame(payload: Uint8Array): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

function unframe(body: Buffer): Buffer {
  assert.ok(body.length >= 5, 'a length-prefixed message');
  assert.equal(body[0], 0, 'not compressed');
  return body.subarray(5, 5 + body.readUInt32BE(1));
}

/** One HTTP/2 stream carrying what Envoy's ext rate-limit client sends. */
function envoyCall(session: ClientHttp2Session, payload: Uint8Array, extraHeaders: Record<string, string> = {}): Promise<WireReply> {
  return new Promise((resolveReply, reject) => {
    const stream = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: PATH,
      [constants.HTTP2_HEADER_SCHEME]: 'http',
      [constants.HTTP2_HEADER_AUTHORITY]: 'ratelimit',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': '20m',
      'user-agent': 'envoy/1.36.0',
      'x-envoy-internal': 'true',
      'x-forwarded-for': '10.0.0.7',
      'x-request-id': '6e1f8a4c-0f3b-4f5e-9a55-2a3f1e9b7c10',
      ...extraHeaders,
    });
    const chunks: Buffer[] = [];
    let headers: IncomingHttpHeaders = {};
    // A trailers-only reply (errors) carries grpc-status in the headers and has no trailers.
    let trailers: IncomingHttpHeaders = {};
    stream.on('response', (received) => {
      headers = received;
    });
    stream.on('trailers', (received) => {
      trailers = received;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolveReply({ headers, trailers, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    stream.end(frame(payload));
  });
}

describe('RLS v3 on the wire, as Envoy sends it', () => {
  let server: TestServer;
  let session: ClientHttp2Session;
  before(async () => {
    server = await startTestServer({ 'basic.yaml': fixtureText('basic.yaml') });
    session = connect(`http://127.0.0.1:${server.port}`);
  });
  after(async () => {
    session.close();
    await server.stop();
  });

  it('answers an Envoy-shaped call within its 20 ms grpc-timeout with a decodable response', async () => {
    const payload = RateLimitRequest.encode(request('test-domain', [d(['key2', 'wire'])])).finish();
    const reply = await envoyCall(session, payload);
    assert.equal(reply.headers[':status'], 200);
    assert.equal(reply.headers['content-type'], 'application/grpc+proto');
    assert.equal(reply.trailers['grpc-status'], '0');
    const response = RateLimitResponse.decode(unframe(reply.body));
    assert.equal(response.overall_code, Code.OK);
    assert.deepEqual(response.statuses[0]?.current_limit, { name: '', requests_per_unit: 20, unit: Unit.MINUTE });
    assert.equal(response.statuses[0]?.limit_remaining, 19);
  });

  it('encodes the response with Envoy field numbers (1 overall_code, 2 statuses → 3 limit_remaining)', async () => {
    const payload = RateLimitRequest.encode(request('test-domain', [d(['key2', 'wire-bytes'])])).finish();
    const body = unframe((await envoyCall(session, payload)).body);
    assert.equal(body[0], (1 << 3) | 0, 'field 1, varint');
    assert.equal(body[1], Code.OK);
    assert.equal(body[2], (2 << 3) | 2, 'field 2, length-delimited');
  });

  it('ignores fields it does not know, as proto3 requires (a newer Envoy may send more)', async () => {
    const writer = new BinaryWriter();
    RateLimitRequest.encode(request('test-domain', [d(['key2', 'wire-unknown'])]), writer);
    writer.uint32((99 << 3) | 2).string('from a future Envoy');
    const reply = await envoyCall(session, writer.finish());
    assert.equal(reply.trailers['grpc-status'], '0');
    assert.equal(RateLimitResponse.decode(unframe(reply.body)).statuses[0]?.limit_remaining, 19);
  });

  it('answers a malformed message with an error status, not a crash, and keeps serving', async () => {
    const reply = await envoyCall(session, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
    assert.notEqual(reply.headers['grpc-status'] ?? reply.trailers['grpc-status'], '0');
    const ok = await envoyCall(session, RateLimitRequest.encode(request('test-domain', [d(['key2', 'wire-after'])])).finish());
    assert.equal(ok.trailers['grpc-status'], '0');
  });

  it('returns INVALID_ARGUMENT in the trailers-only response for an empty domain', async () => {
    const reply = await envoyCall(session, RateLimitRequest.encode(request('', [d(['key2', 'x'])])).finish());
    assert.equal(reply.headers['grpc-status'] ?? reply.trailers['grpc-status'], '3', 'INVALID_ARGUMENT');
    assert.equal(decodeURIComponent(String(reply.headers['grpc-message'] ?? reply.trailers['grpc-message'])), 'domain: rate limit domain must not be empty');
  });
});
