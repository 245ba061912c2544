import { connect, type Socket } from 'node:net';
import { Flag, FrameReader, FrameType, frame, maxConcurrentStreams, openingBytes, PrebuiltCall, windowUpdate, DEFAULT_WINDOW, type IncomingFrame } from './h2-frames';
import { latencyHistogram, loadResult } from './latency';
import { ENVOY_TIMEOUT_MS, type LoadResult, type LoadSpec } from './load-types';
import { workloadFrames, type WorkloadFrames } from './workloads';

const RLS_PATH = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';
/** What Envoy's ratelimit filter sends with every call, its timeout as the deadline. */
function requestHeaders(deadlineMs: number): readonly (readonly [string, string])[] {
  return [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', RLS_PATH],
    [':authority', 'ratelimit'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ['grpc-timeout', `${deadlineMs}m`],
  ];
}
/** Workloads with up to this many distinct calls have each call's bytes built once; larger ones build them per call. */
const PREBUILT_CALLS_MAX = 100_000;
/** Received DATA bytes after which the connection window is topped up again. */
const WINDOW_TOP_UP_BYTES = 1 << 24;
/** After the run, how long calls still in flight are waited for before they count as errors. */
const DRAIN_MS = 2000;

type CallDone = (answered: boolean) => void;

interface OpenStream {
  gotMessage: boolean;
  readonly done: CallDone;
}

interface QueuedCall {
  readonly call: PrebuiltCall;
  readonly done: CallDone;
  readonly queuedAt: number;
}

/**
 * One HTTP/2 connection that sends gRPC calls as prebuilt frames and reads the responses frame
 * by frame. A call counts as answered when a message (DATA) came before its trailers: grpc-js
 * sends every error status as a trailers-only response, so those, and reset streams, are errors.
 * Like Envoy's connection pool, it keeps to the server's SETTINGS_MAX_CONCURRENT_STREAMS and
 * flow-control window: calls past them wait here, in order, and one that has waited past its
 * deadline is given up as an error without being sent. (A peer that opens more streams than
 * the server allows has its connection torn down by Node's HTTP/2.)
 */
class FramedConnection {
  private nextStreamId = 1;
  private sendWindow = DEFAULT_WINDOW;
  private maxStreams = Number.POSITIVE_INFINITY;
  private receivedSinceTopUp = 0;
  private readonly open = new Map<number, OpenStream>();
  /** Calls waiting for a stream or for the connection's send window. */
  private readonly queued: QueuedCall[] = [];
  private readonly reader = new FrameReader();
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly deadlineMs: number,
    onSettings: () => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      // Calls started while the chunk's frames are read leave in one write.
      socket.cork();
      this.reader.push(chunk, (incoming) => this.onFrame(incoming, onSettings));
      socket.uncork();
    });
    socket.on('close', () => this.failAll());
    socket.on('error', () => this.failAll());
  }

  /** Connects and resolves once the server's first SETTINGS have come, so its stream limit is known before any call. */
  static open(port: number, deadlineMs: number): Promise<FramedConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.write(openingBytes());
        const connection = new FramedConnection(socket, deadlineMs, () => {
          socket.off('error', reject);
          resolve(connection);
        });
      });
      socket.once('error', reject);
    });
  }

  send(call: PrebuiltCall, done: CallDone): void {
    if (this.closed) {
      done(false);
      return;
    }
    if (this.queued.length > 0 || !this.hasRoomFor(call)) {
      this.queued.push({ call, done, queuedAt: performance.now() });
      return;
    }
    this.write(call, done);
  }

  private hasRoomFor(call: PrebuiltCall): boolean {
    return this.open.size < this.maxStreams && call.dataBytes <= this.sendWindow;
  }

  /** Writes a call there is a stream and window for. */
  private write(call: PrebuiltCall, done: CallDone): void {
    this.sendWindow -= call.dataBytes;
    const streamId = this.nextStreamId;
    this.nextStreamId += 2;
    this.open.set(streamId, { gotMessage: false, done });
    this.socket.write(call.withStream(streamId, streamId === 1));
  }

  /** Closed by us, by the server (GOAWAY) or by a socket error: calls sent now fail at once. */
  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onFrame({ type, flags, streamId, payload }: IncomingFrame, onSettings: () => void): void {
    switch (type) {
      case FrameType.DATA: {
        const stream = this.open.get(streamId);
        if (stream !== undefined && payload.length > 0) stream.gotMessage = true;
        this.receivedSinceTopUp += payload.length;
        if (this.receivedSinceTopUp >= WINDOW_TOP_UP_BYTES) {
          this.socket.write(windowUpdate(0, this.receivedSinceTopUp));
          this.receivedSinceTopUp = 0;
        }
        if ((flags & Flag.END_STREAM) !== 0) this.finish(streamId, stream?.gotMessage === true);
        return;
      }
      case FrameType.HEADERS:
        if ((flags & Flag.END_STREAM) !== 0) this.finish(streamId, this.open.get(streamId)?.gotMessage === true);
        return;
      case FrameType.RST_STREAM:
        this.finish(streamId, false);
        return;
      case FrameType.SETTINGS:
        if ((flags & Flag.ACK) !== 0) return;
        this.maxStreams = maxConcurrentStreams(payload) ?? this.maxStreams;
        this.socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
        onSettings();
        this.sendQueued();
        return;
      case FrameType.PING:
        if ((flags & Flag.ACK) === 0) this.socket.write(frame(FrameType.PING, Flag.ACK, 0, payload));
        return;
      case FrameType.WINDOW_UPDATE:
        if (streamId === 0) {
          this.sendWindow += payload.readUInt32BE(0) & 0x7fffffff;
          this.sendQueued();
        }
        return;
      case FrameType.GOAWAY:
        this.closed = true;
        return;
      default:
        return;
    }
  }

  private finish(streamId: number, answered: boolean): void {
    const stream = this.open.get(streamId);
    if (stream === undefined) return;
    this.open.delete(streamId);
    stream.done(answered);
    this.sendQueued();
  }

  private sendQueued(): void {
    const givenUpBefore = performance.now() - this.deadlineMs;
    while (this.queued.length > 0) {
      const next = this.queued[0] as QueuedCall;
      if (next.queuedAt < givenUpBefore) {
        this.queued.shift();
        next.done(false);
      } else if (this.hasRoomFor(next.call)) {
        this.queued.shift();
        // Not send(): with calls still queued behind it, send would queue this one again, for ever.
        this.write(next.call, next.done);
      } else return;
    }
  }

  private failAll(): void {
    this.closed = true;
    const open = [...this.open.values()];
    this.open.clear();
    for (const stream of open) stream.done(false);
    for (const { done } of this.queued.splice(0)) done(false);
  }
}

/** The bytes of the index-th call of a workload, built once per distinct call where that is few enough. */
function callsOf(frames: WorkloadFrames, deadlineMs: number): (index: number) => PrebuiltCall {
  const headers = requestHeaders(deadlineMs);
  if (frames.distinct > PREBUILT_CALLS_MAX) return (index) => new PrebuiltCall(headers, frames.frameAt(index));
  const prebuilt = Array.from({ length: frames.distinct }, (_, index) => new PrebuiltCall(headers, frames.frameAt(index)));
  return (index) => prebuilt[index % prebuilt.length] as PrebuiltCall;
}

/**
 * The built-in load generator (when h2load is not installed, and for workloads with many
 * distinct requests, which h2load cannot send): `connections` HTTP/2 connections over node:net,
 * each keeping `streams` gRPC calls in flight (closed loop), or sending at a fixed total rate.
 * Calls are written as prebuilt frames, so the generator spends a few microseconds per call
 * where node:http2's client spent tens: on two cores, what it leaves is the servers'. Latency is
 * measured per call in microseconds into an HDR histogram, from when the call was started: time
 * it waited here for a stream is part of it, as it is of what Envoy waits.
 */
export async function runFramesLoad(spec: LoadSpec, onProgress: (sent: number) => void): Promise<LoadResult> {
  const deadlineMs = spec.deadlineMs ?? ENVOY_TIMEOUT_MS;
  const callAt = callsOf(workloadFrames(spec.workload), deadlineMs);
  const histogram = latencyHistogram();
  const connections = await Promise.all(Array.from({ length: spec.connections }, () => FramedConnection.open(spec.port, deadlineMs)));
  let next = 0;
  let answered = 0;
  let errors = 0;
  let lateAnswers = 0;
  let inFlight = 0;
  const startedAt = performance.now();
  const endAt = startedAt + spec.seconds * 1000;
  const callLimit = spec.calls ?? Number.POSITIVE_INFINITY;

  const start = (connection: FramedConnection, then: (() => void) | undefined): void => {
    const sentAt = performance.now();
    inFlight++;
    connection.send(callAt(next++), (ok) => {
      inFlight--;
      if (ok) {
        answered++;
        const micros = Math.max(1, Math.round((performance.now() - sentAt) * 1000));
        histogram.recordValue(micros);
        if (micros > deadlineMs * 1000) lateAnswers++;
      } else errors++;
      then?.();
    });
  };

  const progress = setInterval(() => onProgress(answered + errors), 250);
  try {
    if (spec.ratePerSecond === undefined) {
      await new Promise<void>((resolveRun) => {
        const loop = (connection: FramedConnection): void => {
          if (!connection.isClosed && performance.now() < endAt && next < callLimit) start(connection, () => loop(connection));
          else if (inFlight === 0) resolveRun();
        };
        for (const connection of connections) for (let stream = 0; stream < spec.streams; stream++) loop(connection);
      });
    } else {
      await fixedRate(spec.ratePerSecond, endAt, startedAt, (index) => start(connections[index % connections.length] as FramedConnection, undefined));
      const drainUntil = performance.now() + DRAIN_MS;
      while (inFlight > 0 && performance.now() < drainUntil) await new Promise((resolveWait) => setTimeout(resolveWait, 5));
      errors += inFlight;
    }
  } finally {
    clearInterval(progress);
    for (const connection of connections) connection.close();
  }
  const elapsedSeconds = (performance.now() - startedAt) / 1000;
  return loadResult('h2-frames', { requests: answered, errors, lateAnswers, seconds: elapsedSeconds }, histogram);
}

/** Starts `send` at `ratePerSecond` on average until `endAt`, catching up after a late timer. */
async function fixedRate(ratePerSecond: number, endAt: number, startedAt: number, send: (index: number) => void): Promise<void> {
  let sent = 0;
  while (performance.now() < endAt) {
    const due = Math.floor(((performance.now() - startedAt) / 1000) * ratePerSecond);
    while (sent < due) send(sent++);
    await new Promise((resolveTick) => setTimeout(resolveTick, 1));
  }
}
