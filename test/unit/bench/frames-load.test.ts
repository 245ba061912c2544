import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { Server, ServerCredentials, status as GrpcStatus } from '@grpc/grpc-js';
import fc from 'fast-check';
import { runFramesLoad } from '../../../src/bench/frames-load';
import { CONNECTION_PREFACE, DEFAULT_WINDOW, Flag, FrameReader, FrameType, frame, windowUpdate, type IncomingFrame } from '../../../src/bench/h2-frames';
import { startNoopServer } from '../../../src/bench/noop-server';
import { RateLimitServiceService, type RateLimitServiceServer } from '../../../src/generated/envoy/service/ratelimit/v3/rls';

/** A grpc-js RLS server that records the values it was asked about and answers every call with `failWith` (OVER_LIMIT otherwise). */
async function startRecordingServer(failWith?: GrpcStatus): Promise<{ port: number; values: string[]; stop(): void }> {
  const server = new Server();
  const values: string[] = [];
  const handlers: RateLimitServiceServer = {
    shouldRateLimit: (call, callback) => {
      values.push(call.request.descriptors[0]?.entries[0]?.value ?? '');
      if (failWith !== undefined) callback({ code: failWith, details: 'refused by the test server' });
      else callback(null, { overall_code: 1, statuses: [], response_headers_to_add: [], request_headers_to_add: [], raw_body: Buffer.alloc(0), dynamic_metadata: undefined, quota: undefined });
    },
  };
  server.addService(RateLimitServiceService, handlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  return { port, values, stop: () => server.forceShutdown() };
}

/** A SETTINGS payload with SETTINGS_MAX_CONCURRENT_STREAMS (0x3) only. */
function maxStreamsSetting(streams: number): Buffer {
  const payload = Buffer.alloc(6);
  payload.writeUInt16BE(0x3, 0);
  payload.writeUInt32BE(streams, 2);
  return payload;
}

/** A gRPC answer on a stream: response headers, an empty message, trailers ending the stream. */
function answerFrames(streamId: number): Buffer {
  return Buffer.concat([
    frame(FrameType.HEADERS, Flag.END_HEADERS, streamId, Buffer.from([0x88])),
    frame(FrameType.DATA, 0, streamId, Buffer.alloc(5)),
    frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, streamId, Buffer.from([0x88])),
  ]);
}

/** A bare HTTP/2 peer on a free port: sends `settings`, then hands each DATA frame it reads to `onData`. */
async function startBarePeer(settings: Buffer, onData: (socket: Socket, streamId: number, dataBytes: number) => void): Promise<{ port: number; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket: Socket) => {
    sockets.add(socket);
    const reader = new FrameReader();
    let prefaceLeft = CONNECTION_PREFACE.length;
    socket.write(frame(FrameType.SETTINGS, 0, 0, settings));
    socket.on('data', (chunk: Buffer) => {
      const skipped = Math.min(prefaceLeft, chunk.length);
      prefaceLeft -= skipped;
      reader.push(chunk.subarray(skipped), ({ type, streamId, payload }) => {
        if (type === FrameType.DATA) onData(socket, streamId, payload.length);
      });
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return {
    port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

describe('the h2-frames load generator', function () {
  this.timeout(30_000);

  it('sends every call of a workload to a grpc-js server, past the first 64 KiB of flow-control window, and counts the answers', async () => {
    const server = await startRecordingServer();
    try {
      const result = await runFramesLoad({ port: server.port, workload: 'uniform_1k', seconds: 25, calls: 4000, connections: 2, streams: 8 }, () => undefined);
      assert.equal(result.generator, 'h2-frames');
      assert.equal(result.requests, 4000);
      assert.equal(result.errors, 0);
      assert.equal(server.values.length, 4000);
      // The connection's headers were indexed after its first call: the server decoded every later one too.
      assert.equal(new Set(server.values).size, 1000, 'each of the 1,000 keys arrived');
      assert.ok(result.p50Ms > 0 && result.p99Ms >= result.p50Ms);
    } finally {
      server.stop();
    }
  });

  it('counts a gRPC error status (a trailers-only response) as an error, not an answer', async () => {
    const server = await startRecordingServer(GrpcStatus.UNAVAILABLE);
    try {
      const result = await runFramesLoad({ port: server.port, workload: 'hot', seconds: 25, calls: 200, connections: 1, streams: 4 }, () => undefined);
      assert.equal(result.requests, 0);
      assert.equal(result.errors, 200);
    } finally {
      server.stop();
    }
  });

  it('keeps a fixed rate against the no-op server', async () => {
    const { port, server } = await startNoopServer(0);
    try {
      const result = await runFramesLoad({ port, workload: 'hot', seconds: 1, connections: 2, streams: 1, ratePerSecond: 500 }, () => undefined);
      assert.equal(result.errors, 0);
      assert.ok(result.requests >= 450 && result.requests <= 510, `${result.requests} calls in a second at 500/s`);
    } finally {
      server.forceShutdown();
    }
  });

  it('holds calls the connection window has no room for, and sends them all, in order, once the server opens it', async () => {
    // A bare HTTP/2 peer that opens no window until the client has used up the first 64 KiB.
    const streamsSeen: number[] = [];
    let received = 0;
    let opened = false;
    const peer = await startBarePeer(Buffer.alloc(0), (socket, streamId, dataBytes) => {
      streamsSeen.push(streamId);
      received += dataBytes;
      socket.write(answerFrames(streamId));
      if (!opened && received > DEFAULT_WINDOW - 100) {
        opened = true;
        socket.write(windowUpdate(0, 1 << 24));
      }
    });
    try {
      const result = await runFramesLoad({ port: peer.port, workload: 'uniform_1k', seconds: 25, calls: 3000, connections: 1, streams: 3000, deadlineMs: 20_000 }, () => undefined);
      assert.equal(result.errors, 0);
      assert.equal(result.requests, 3000, 'every call, those held for the window included');
      assert.deepEqual(streamsSeen, streamsSeen.slice().sort((a, b) => a - b), 'stream ids reach the server in increasing order');
    } finally {
      peer.close();
    }
  });

  it("keeps to the server's SETTINGS_MAX_CONCURRENT_STREAMS: calls past it wait for a stream to end", async () => {
    let open = 0;
    let mostOpen = 0;
    const peer = await startBarePeer(maxStreamsSetting(4), (socket, streamId) => {
      open++;
      mostOpen = Math.max(mostOpen, open);
      setImmediate(() => {
        open--;
        socket.write(answerFrames(streamId));
      });
    });
    try {
      const result = await runFramesLoad({ port: peer.port, workload: 'uniform_1k', seconds: 25, calls: 300, connections: 1, streams: 50, deadlineMs: 20_000 }, () => undefined);
      assert.equal(result.errors, 0);
      assert.equal(result.requests, 300);
      assert.equal(result.lateAnswers, 0);
      assert.equal(mostOpen, 4, 'streams open at once on the server');
    } finally {
      peer.close();
    }
  });

  it('gives up, as errors and without sending them, calls that waited for a stream past their 20 ms deadline', async () => {
    const streamsSeen: number[] = [];
    const peer = await startBarePeer(maxStreamsSetting(1), (socket, streamId) => {
      streamsSeen.push(streamId);
      // The first call holds the only stream for 60 ms; the nine behind it are due after 20.
      setTimeout(() => socket.write(answerFrames(streamId)), streamId === 1 ? 60 : 0);
    });
    try {
      const result = await runFramesLoad({ port: peer.port, workload: 'hot', seconds: 25, calls: 10, connections: 1, streams: 10 }, () => undefined);
      assert.equal(result.requests, 1);
      assert.equal(result.lateAnswers, 1, 'the one answered came after its deadline');
      assert.equal(result.errors, 9);
      assert.deepEqual(streamsSeen, [1], 'calls given up never reached the server');
    } finally {
      peer.close();
    }
  });

  it('reads the same frames however the byte stream is cut into chunks', () => {
    const frames = [frame(0x4, 0, 0, Buffer.alloc(6)), frame(0x1, 0x5, 3, Buffer.from('headers')), frame(0x0, 0x1, 3, Buffer.alloc(300, 7)), frame(0x6, 0, 0, Buffer.alloc(8, 1))];
    const bytes = Buffer.concat(frames);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 20 }), (cuts) => {
        const reader = new FrameReader();
        const seen: IncomingFrame[] = [];
        let from = 0;
        for (const cut of [...cuts].sort((a, b) => a - b).concat(bytes.length)) {
          reader.push(bytes.subarray(from, cut), (incoming) => seen.push({ ...incoming, payload: Buffer.from(incoming.payload) }));
          from = cut;
        }
        assert.deepEqual(seen.map((incoming) => [incoming.type, incoming.flags, incoming.streamId, incoming.payload.length]), [[4, 0, 0, 6], [1, 5, 3, 7], [0, 1, 3, 300], [6, 0, 0, 8]]);
      }),
    );
  });
});
