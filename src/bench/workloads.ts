import { RateLimitRequest } from '../generated/envoy/service/ratelimit/v3/rls';

/** The rules every benchmarked ringlimit serves (domain `bench`). */
export const BENCH_RULES = `domain: bench
descriptors:
  # One key everybody hits: admitted up to its rate, then denied (mostly from the local copy).
  - key: hot
    rate_limit: {unit: second, requests_per_unit: 1000}
  # Many keys, each well under its limit: every call is an admission.
  - key: user
    rate_limit: {unit: second, requests_per_unit: 1000000}
  # A limit every caller is over after its first call.
  - key: tight
    rate_limit: {unit: hour, requests_per_unit: 1}
`;

export const WORKLOAD_NAMES = ['hot', 'uniform_1k', 'zipf_1m', 'over_20pct', 'distinct_1m'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];
/** What `ringlimit bench` runs unless told otherwise: distinct_1m takes minutes per server. */
export const DEFAULT_WORKLOADS: readonly WorkloadName[] = ['hot', 'uniform_1k', 'zipf_1m', 'over_20pct'];
/** Calls a workload sends in all (closed loop, whatever the run's length), where it has a count. */
export const WORKLOAD_CALLS: Readonly<Partial<Record<WorkloadName, number>>> = { distinct_1m: 1_000_000 };

export const WORKLOAD_TITLES: Readonly<Record<WorkloadName, string>> = {
  hot: 'one hot key',
  uniform_1k: '1,000 keys, uniform',
  zipf_1m: '1,000,000 keys, Zipf s=1.1',
  over_20pct: '1,000 keys, 20% over limit',
  distinct_1m: '1,000,000 distinct keys',
};

/** How many distinct request bodies a workload cycles through (a sample of its key distribution). */
const SAMPLE_SIZE = 50_000;

/** gRPC's length-prefixed message: flag 0 (not compressed), big-endian length, the protobuf. */
export function grpcFrame(request: RateLimitRequest): Buffer {
  const body = RateLimitRequest.encode(request).finish();
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  return frame;
}

function call(key: string, value: string): RateLimitRequest {
  return { domain: 'bench', descriptors: [{ entries: [{ key, value }], limit: undefined, hits_addend: undefined }], hits_addend: 0 };
}

/** A small deterministic generator, so every run sends the same keys in the same order. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Zipf(s) ranks over 1..n by inverting the continuous approximation of its CDF. */
function zipfRank(random: () => number, n: number, s: number): number {
  const u = random();
  const exponent = 1 - s;
  const rank = Math.pow(u * (Math.pow(n, exponent) - 1) + 1, 1 / exponent);
  return Math.min(n, Math.max(1, Math.floor(rank)));
}

/** The request frames a workload sends, in order: `frameAt(index)` for the index-th call. */
export interface WorkloadFrames {
  /** Distinct frames before the sequence repeats. */
  readonly distinct: number;
  frameAt(index: number): Buffer;
}

function cycled(frames: readonly Buffer[]): WorkloadFrames {
  return { distinct: frames.length, frameAt: (index) => frames[index % frames.length] as Buffer };
}

export function workloadFrames(name: WorkloadName): WorkloadFrames {
  const random = seededRandom(0x5eed);
  switch (name) {
    case 'hot':
      return cycled([grpcFrame(call('hot', 'the-one'))]);
    case 'uniform_1k':
      return cycled(Array.from({ length: 1000 }, (_, index) => grpcFrame(call('user', `u${index}`))));
    case 'zipf_1m':
      return cycled(Array.from({ length: SAMPLE_SIZE }, () => grpcFrame(call('user', `z${zipfRank(random, 1_000_000, 1.1)}`))));
    case 'over_20pct':
      return cycled(Array.from({ length: 1000 }, (_, index) => grpcFrame(index % 5 === 0 ? call('tight', `t${index}`) : call('user', `o${index}`))));
    case 'distinct_1m':
      // Built per call: a million frames held at once would weigh on the generator.
      return { distinct: 1_000_000, frameAt: (index) => grpcFrame(call('user', `d${index % 1_000_000}`)) };
  }
}
