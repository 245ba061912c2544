import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { latencyHistogram, loadResult } from './latency';
import type { LoadResult, LoadSpec } from './load-types';
import { workloadFrames } from './workloads';

const RLS_PATH = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';
/** What Envoy's ratelimit filter sends with every call (its 20 ms timeout as the deadline). */
const HEADERS = {
  [constants.HTTP2_HEADER_METHOD]: 'POST',
  [constants.HTTP2_HEADER_PATH]: RLS_PATH,
  'content-type': 'application/grpc',
  te: 'trailers',
  'grpc-timeout': '20m',
};

/**
 * The built-in HTTP/2 load generator (when h2load is not installed, and for workloads with many
 * distinct requests, which h2load cannot send): `connections` sessions, each keeping `streams`
 * gRPC calls in flight (closed loop), or sending at a fixed total rate. Latency is measured per
 * call in microseconds into an HDR histogram.
 */
export async function runHttp2Load(spec: LoadSpec, onProgress: (sent: number) => void): Promise<LoadResult> {
  const frames = workloadFrames(spec.workload);
  const histogram = latencyHistogram();
  const sessions: ClientHttp2Session[] = await Promise.all(
    Array.from({ length: spec.connections }, () => new Promise<ClientHttp2Session>((resolveSession, reject) => {
      const session = connect(`http://127.0.0.1:${spec.port}`);
      session.once('connect', () => resolveSession(session));
      session.once('error', reject);
    })),
  );
  let next = 0;
  let ok = 0;
  let errors = 0;
  let inFlight = 0;
  const startedAt = performance.now();
  const endAt = startedAt + spec.seconds * 1000;
  const callLimit = spec.calls ?? Number.POSITIVE_INFINITY;

  const callOnce = (session: ClientHttp2Session): Promise<void> =>
    new Promise((resolveCall) => {
      const frame = frames.frameAt(next++);
      const sentAt = performance.now();
      inFlight++;
      let status: string | undefined;
      const stream = session.request(HEADERS);
      stream.on('response', (headers) => {
        if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
      });
      stream.on('trailers', (trailers) => {
        status = String(trailers['grpc-status']);
      });
      stream.on('data', () => undefined);
      stream.on('close', () => {
        inFlight--;
        if (status === '0') {
          ok++;
          histogram.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
        } else errors++;
        resolveCall();
      });
      stream.on('error', () => undefined);
      stream.end(frame);
    });

  const progress = setInterval(() => onProgress(ok + errors), 250);
  try {
    if (spec.ratePerSecond === undefined) {
      await Promise.all(
        sessions.flatMap((session) =>
          Array.from({ length: spec.streams }, async () => {
            while (performance.now() < endAt && next < callLimit) await callOnce(session);
          }),
        ),
      );
    } else {
      await fixedRate(spec.ratePerSecond, endAt, startedAt, (index) => void callOnce(sessions[index % sessions.length] as ClientHttp2Session));
      while (inFlight > 0) await new Promise((resolveWait) => setTimeout(resolveWait, 5));
    }
  } finally {
    clearInterval(progress);
    for (const session of sessions) session.close();
  }
  const elapsedSeconds = (performance.now() - startedAt) / 1000;
  return loadResult('node:http2', { requests: ok, errors, seconds: elapsedSeconds }, histogram);
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
