import { connect, type Socket } from 'node:net';
import { Flag, FrameReader, FrameType, frame, openingBytes, PrebuiltCall, windowUpdate, DEFAULT_WINDOW, type IncomingFrame } from './h2-frames';
import { latencyHistogram, loadResult } from './latency';
import type { LoadResult, LoadSpec } from './load-types';
import { workloadFrames, type WorkloadFrames } from './workloads';

const RLS_PATH = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';
/** What Envoy's ratelimit filter sends with every call (its 20 ms timeout as the deadline). */
const REQUEST_HEADERS: readonly (readonly [string, string])[] = [
  [':method', 'POST'],
  [':scheme', 'http'],
  [':path', RLS_PATH],
  [':authority', 'ratelimit'],
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
  ['grpc-timeout', '20m'],
];
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

/**
 * One HTTP/2 connection that sends gRPC calls as prebuilt frames and reads the responses frame
 * by frame. A call counts as answered when a message (DATA) came before its trailers: grpc-js
 * sends every error status as a trailers-only response, so those, and reset streams, are errors.
 */
class FramedConnection {
  private nextStreamId = 1;
  private sendWindow = DEFAULT_WINDOW;
  private receivedSinceTopUp = 0;
  private readonly open = new Map<number, OpenStream>();
  /** Calls waiting for the connection's send window. */
  private readonly blocked: { call: PrebuiltCall; done: CallDone }[] = [];
  private readonly reader = new FrameReader();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      // Calls started while the chunk's frames are read leave in one write.
      socket.cork();
      this.reader.push(chunk, (incoming) => this.onFrame(incoming));
      socket.uncork();
    });
    socket.on('close', () => this.failAll());
    socket.on('error', () => this.failAll());
  }

  static open(port: number): Promise<FramedConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        socket.write(openingBytes());
        resolve(new FramedConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  send(call: PrebuiltCall, done: CallDone): void {
    if (this.closed) {
      done(false);
      return;
    }
    if (this.sendWindow < call.dataBytes || this.blocked.length > 0) {
      this.blocked.push({ call, done });
      return;
    }
    this.write(call, done);
  }

  /** Writes a call the connection's send window has room for. */
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

  private onFrame({ type, flags, streamId, payload }: IncomingFrame): void {
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
        if ((flags & Flag.ACK) === 0) this.socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
        return;
      case FrameType.PING:
        if ((flags & Flag.ACK) === 0) this.socket.write(frame(FrameType.PING, Flag.ACK, 0, payload));
        return;
      case FrameType.WINDOW_UPDATE:
        if (streamId === 0) {
          this.sendWindow += payload.readUInt32BE(0) & 0x7fffffff;
          this.sendBlocked();
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
  }

  private sendBlocked(): void {
    while (this.blocked.length > 0 && (this.blocked[0]?.call.dataBytes ?? 0) <= this.sendWindow) {
      const next = this.blocked.shift() as { call: PrebuiltCall; done: CallDone };
      // Not send(): with calls still blocked behind it, send would queue this one again, for ever.
      this.write(next.call, next.done);
    }
  }

  private failAll(): void {
    this.closed = true;
    const open = [...this.open.values()];
    this.open.clear();
    for (const stream of open) stream.done(false);
    for (const { done } of this.blocked.splice(0)) done(false);
  }
}

/** The bytes of the index-th call of a workload, built once per distinct call where that is few enough. */
function callsOf(frames: WorkloadFrames): (index: number) => PrebuiltCall {
  if (frames.distinct > PREBUILT_CALLS_MAX) return (index) => new PrebuiltCall(REQUEST_HEADERS, frames.frameAt(index));
  const prebuilt = Array.from({ length: frames.distinct }, (_, index) => new PrebuiltCall(REQUEST_HEADERS, frames.frameAt(index)));
  return (index) => prebuilt[index % prebuilt.length] as PrebuiltCall;
}

/**
 * The built-in load generator (when h2load is not installed, and for workloads with many
 * distinct requests, which h2load cannot send): `connections` HTTP/2 connections over node:net,
 * each keeping `streams` gRPC calls in flight (closed loop), or sending at a fixed total rate.
 * Calls are written as prebuilt frames, so the generator spends a few microseconds per call
 * where node:http2's client spent tens: on two cores, what it leaves is the servers'. Latency is
 * measured per call in microseconds into an HDR histogram.
 */
export async function runFramesLoad(spec: LoadSpec, onProgress: (sent: number) => void): Promise<LoadResult> {
  const callAt = callsOf(workloadFrames(spec.workload));
  const histogram = latencyHistogram();
  const connections = await Promise.all(Array.from({ length: spec.connections }, () => FramedConnection.open(spec.port)));
  let next = 0;
  let answered = 0;
  let errors = 0;
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
        histogram.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
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
  return loadResult('h2-frames', { requests: answered, errors, seconds: elapsedSeconds }, histogram);
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
