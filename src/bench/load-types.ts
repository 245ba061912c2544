import type { WorkloadName } from './workloads';

/** Envoy's ratelimit filter's default timeout, which every benchmarked call carries as its deadline. */
export const ENVOY_TIMEOUT_MS = 20;

/** One load run against one server. */
export interface LoadSpec {
  readonly port: number;
  readonly workload: WorkloadName;
  /** Longest the run lasts. */
  readonly seconds: number;
  /** Calls to send at most (closed loop); the run ends at whichever comes first. */
  readonly calls?: number | undefined;
  readonly connections: number;
  /** Calls kept in flight per connection (closed loop). */
  readonly streams: number;
  /** Each call's deadline (grpc-timeout), Envoy's default 20 ms unless given: the h2-frames generator gives up a call that waited this long for a stream. */
  readonly deadlineMs?: number | undefined;
  /** Fixed total rate instead of a closed loop. */
  readonly ratePerSecond?: number | undefined;
}

export interface LoadResult {
  readonly generator: 'h2load' | 'h2-frames';
  /** Calls answered with grpc-status 0 (h2load: HTTP 200). */
  readonly requests: number;
  readonly errors: number;
  /** Answers that came after the call's deadline, counted in `requests`: Envoy would have given up on them. */
  readonly lateAnswers: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
}

/** Messages between the bench and its load-generator child process. */
export type LoadMessage = { readonly kind: 'progress'; readonly sent: number } | { readonly kind: 'done'; readonly result: LoadResult } | { readonly kind: 'failed'; readonly error: string };
