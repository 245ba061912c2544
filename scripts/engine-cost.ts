import { pino } from 'pino';
import { redisAvailable, startRedisShards } from '../src/bench/processes';
import { BENCH_RULES, WORKLOAD_NAMES, workloadFrames, type WorkloadName } from '../src/bench/workloads';
import { compileRuleFiles } from '../src/config/load-rule-dir';
import { systemClock, type BucketStore } from '../src/core';
import { RateLimitRequest } from '../src/generated/envoy/service/ratelimit/v3/rls';
import { RateLimiter } from '../src/limiter/rate-limiter';
import { toQuery } from '../src/server/grpc/rls-service';
import { MemoryBucketStore } from '../src/store/memory-store';
import { connectShards } from '../src/store/redis/connect-shards';
import { RedisShardStore } from '../src/store/redis/redis-shard-store';

/*
 * What the engine costs per decision, without gRPC and without a load generator competing for
 * the CPU (not CI): CALLS calls of a bench workload, CONCURRENCY at a time, straight into the
 * RateLimiter on the memory store or on three redis-server shards it spawns, each with Envoy's
 * 20 ms deadline. Prints this process's CPU time per decision per round (the first round warms up).
 *   npm run build && node build/scripts/engine-cost.js [workload] [memory|redis]
 */

const CALLS = Number(process.env.CALLS ?? 60_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const ROUNDS = 3;

async function main(): Promise<void> {
  const workload = (process.argv[2] ?? 'uniform_1k') as WorkloadName;
  const storeKind = process.argv[3] ?? 'redis';
  if (!WORKLOAD_NAMES.includes(workload)) throw new Error(`workload: one of ${WORKLOAD_NAMES.join(', ')}`);
  if (storeKind !== 'memory' && storeKind !== 'redis') throw new Error('store: memory or redis');
  if (storeKind === 'redis' && !redisAvailable()) throw new Error('redis-server is not installed');
  const rules = compileRuleFiles([{ file: 'bench.yaml', text: BENCH_RULES }]);
  const shards = storeKind === 'redis' ? await startRedisShards(3) : undefined;
  let store: BucketStore;
  if (shards === undefined) {
    store = new MemoryBucketStore({ clock: systemClock, maxBuckets: 100_000 });
  } else {
    const clients = await connectShards({ shards: shards.urls.map((url, index) => ({ name: `shard-${index}`, url })), commandTimeoutMs: 100, logger: pino({ level: 'silent' }) });
    store = new RedisShardStore({ shards: clients, clock: systemClock });
  }
  const limiter = new RateLimiter({ store, clock: systemClock, rules: () => rules, recordCacheTtlMs: shards === undefined ? 0 : 2000 });
  const frames = workloadFrames(workload);
  const queryAt = (index: number) => toQuery(RateLimitRequest.decode(frames.frameAt(index).subarray(5)), undefined, 20);
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      await shards?.resetStats();
      let next = 0;
      let errors = 0;
      const cpuBefore = process.cpuUsage();
      const startedAt = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < CALLS) {
            const query = queryAt((round - 1) * CALLS + next++);
            await limiter.shouldRateLimit(query).catch(() => errors++);
          }
        }),
      );
      const cpu = process.cpuUsage(cpuBefore);
      const commands = shards === undefined ? undefined : await shards.commandCalls();
      const scriptCalls = commands === undefined ? undefined : (commands.get('evalsha') ?? 0) + (commands.get('eval') ?? 0);
      console.log(
        JSON.stringify({
          round,
          workload,
          store: storeKind,
          cpuMicrosPerDecision: Number(((cpu.user + cpu.system) / CALLS).toFixed(1)),
          wallMicrosPerDecision: Number((((performance.now() - startedAt) * 1000) / CALLS).toFixed(1)),
          scriptCallsPerDecision: scriptCalls === undefined ? undefined : Number((scriptCalls / CALLS).toFixed(3)),
          errors,
          counters: limiter.counters,
        }),
      );
    }
  } finally {
    await store.close();
    await shards?.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
