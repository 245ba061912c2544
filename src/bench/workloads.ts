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

export const WORKLOAD_NAMES = ['hot', 'uniform_1k', 'zipf_1m', 'over_20pct'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

export const WORKLOAD_TITLES: Readonly<Record<WorkloadName, string>> = {
  hot: 'one hot key',
  uniform_1k: '1,000 keys, uniform',
  zipf_1m: '1,000,000 keys, Zipf s=1.1',
  over_20pct: '1,000 keys, 20% over limit',
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

/** The request frames a workload sends, in order (the generator cycles through them). */
export function workloadFrames(name: WorkloadName): Buffer[] {
  const random = seededRandom(0x5eed);
  switch (name) {
    case 'hot':
      return [grpcFrame(call('hot', 'the-one'))];
    case 'uniform_1k':
      return Array.from({ length: 1000 }, (_, index) => grpcFrame(call('user', `u${index}`)));
    case 'zipf_1m':
      return Array.from({ length: SAMPLE_SIZE }, () => grpcFrame(call('user', `z${zipfRank(random, 1_000_000, 1.1)}`)));
    case 'over_20pct':
      return Array.from({ length: 1000 }, (_, index) => grpcFrame(index % 5 === 0 ? call('tight', `t${index}`) : call('user', `o${index}`)));
  }
}
