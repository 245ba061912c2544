import { Server, ServerCredentials } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import {
  RateLimitResponse,
  RateLimitResponse_Code,
  RateLimitServiceService,
  type RateLimitRequest,
  type RateLimitServiceServer,
} from '../generated/envoy/service/ratelimit/v3/rls';

/**
 * The alternatives a Node user would write, for the bench to compare ringlimit on Redis with:
 * a grpc-js server that, per descriptor, calls rate-limiter-flexible's RateLimiterRedis, or one
 * atomic Lua token-bucket script. Same shards (hashed by key), same limits as BENCH_RULES, no
 * local state, auto-pipelining on.
 */
export type BaselineKind = 'rate-limiter-flexible' | 'lua-token-bucket';

/** BENCH_RULES' limits: requests per second (and the bucket size) by descriptor key. */
const PER_SECOND: Readonly<Record<string, { rate: number; capacity: number }>> = {
  hot: { rate: 1000, capacity: 1000 },
  user: { rate: 1_000_000, capacity: 1_000_000 },
  tight: { rate: 1 / 3600, capacity: 1 },
};

const TOKEN_BUCKET_LUA = `
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local record = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = capacity
if record[1] then tokens = math.min(capacity, tonumber(record[1]) + math.max(0, now - tonumber(record[2])) * per_ms) end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / per_ms) + 1)
return {allowed, math.floor(tokens)}
`;

type Decide = (key: string, limit: { rate: number; capacity: number }) => Promise<boolean>;

function hashOf(text: string): number {
  let hash = 2166136261;
  for (let index = 0; index < text.length; index++) hash = Math.imul(hash ^ text.charCodeAt(index), 16777619);
  return hash >>> 0;
}

function deciderFor(kind: BaselineKind, clients: readonly Redis[]): Decide {
  const pick = (key: string): Redis => clients[hashOf(key) % clients.length] as Redis;
  if (kind === 'lua-token-bucket') {
    for (const client of clients) client.defineCommand('tokenBucket', { numberOfKeys: 1, lua: TOKEN_BUCKET_LUA });
    return async (key, { rate, capacity }) => {
      const client = pick(key) as Redis & { tokenBucket(key: string, capacity: number, perMs: number, now: number): Promise<[number, number]> };
      const [allowed] = await client.tokenBucket(`lua:${key}`, capacity, rate / 1000, Date.now());
      return allowed === 1;
    };
  }
  const limiters = new Map<string, RateLimiterRedis>();
  return async (key, { rate, capacity }) => {
    const client = pick(key);
    const limiterKey = `${clients.indexOf(client)}:${rate}`;
    let limiter = limiters.get(limiterKey);
    if (limiter === undefined) {
      // rate-limiter-flexible counts points per fixed duration: `capacity` points per capacity/rate seconds.
      limiter = new RateLimiterRedis({ storeClient: client, points: capacity, duration: Math.max(1, Math.round(capacity / rate)), keyPrefix: 'rlf' });
      limiters.set(limiterKey, limiter);
    }
    try {
      await limiter.consume(key, 1);
      return true;
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return false;
      throw rejection;
    }
  };
}

export function startBaselineServer(kind: BaselineKind, shardUrls: readonly string[]): Promise<{ port: number; stop(): Promise<void> }> {
  const clients = shardUrls.map((url) => new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 }));
  const decide = deciderFor(kind, clients);
  const answer = async (request: RateLimitRequest): Promise<RateLimitResponse> => {
    const verdicts = await Promise.all(
      request.descriptors.map((descriptor) => {
        const [entry] = descriptor.entries;
        const limit = entry === undefined ? undefined : PER_SECOND[entry.key];
        if (entry === undefined || limit === undefined) return true;
        return decide(`${request.domain}|${entry.key}=${entry.value}`, limit);
      }),
    );
    const code = (allowed: boolean): RateLimitResponse_Code => (allowed ? RateLimitResponse_Code.OK : RateLimitResponse_Code.OVER_LIMIT);
    return RateLimitResponse.fromPartial({
      overall_code: code(verdicts.every(Boolean)),
      statuses: verdicts.map((allowed) => ({ code: code(allowed) })),
    });
  };
  const handlers: RateLimitServiceServer = {
    shouldRateLimit: (call, callback) => {
      answer(call.request).then(
        (response) => callback(null, response),
        (error: unknown) => callback({ code: 14, details: String(error) }),
      );
    },
  };
  const server = new Server({ 'grpc.max_concurrent_streams': 1000 });
  server.addService(RateLimitServiceService, handlers);
  return new Promise((resolveStart, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
      if (error !== null) {
        reject(error);
        return;
      }
      resolveStart({
        port,
        async stop() {
          server.forceShutdown();
          for (const client of clients) client.disconnect();
        },
      });
    });
  });
}
