import type { Logger } from 'pino';
import { errorMessage, systemClock, type BucketStore, type Clock } from './core';
import { FileRuleSource } from './config/file-rule-source';
import { RateLimiter, type EngineCounters } from './limiter/rate-limiter';
import { createLogger } from './observability/logger';
import { GrpcServer } from './server/grpc/grpc-server';
import { createRlsHandlers } from './server/grpc/rls-service';
import type { Settings } from './settings/settings';
import { MemoryBucketStore } from './store/memory-store';
import { connectShards } from './store/redis/connect-shards';
import { RedisShardStore } from './store/redis/redis-shard-store';
import { ShardRing } from './store/redis/shard-ring';

/** Parts a test (or a later composition) may supply instead of the defaults. */
export interface AppOverrides {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly store?: BucketStore;
  /** How often store connectivity is checked for health (ms). */
  readonly healthCheckIntervalMs?: number;
}

export interface App {
  /** Loads the rules, connects the store, binds the servers; resolves with the bound gRPC port. */
  start(): Promise<{ grpcPort: number }>;
  /** Health goes NOT_SERVING, new calls are refused, in-flight calls finish (up to the grace time). */
  stop(): Promise<void>;
  readonly rules: FileRuleSource;
  readonly logger: Logger;
  /** The engine's counters once started (decisions, store reads/writes, conflicts). */
  counters(): EngineCounters | undefined;
}

interface Running {
  readonly store: BucketStore;
  readonly limiter: RateLimiter;
  readonly grpc: GrpcServer;
  readonly timers: NodeJS.Timeout[];
}

/** The composition root: the only place that knows every concrete part. */
export function createApp(settings: Settings, overrides: AppOverrides = {}): App {
  const logger = (overrides.logger ?? createLogger({ level: settings.logLevel })).child({ region: settings.region });
  const clock = overrides.clock ?? systemClock;
  const rules = new FileRuleSource({ dir: settings.configDir, logger });
  let running: Running | undefined;
  let stopping = false;

  const createStore = async (): Promise<{ store: BucketStore; kind: string }> => {
    if (overrides.store !== undefined) return { store: overrides.store, kind: 'custom' };
    if (settings.redisShards.length === 0) {
      return { store: new MemoryBucketStore({ clock, maxBuckets: settings.memoryMaxBuckets }), kind: 'memory' };
    }
    const shards = await connectShards({
      shards: settings.redisShards,
      commandTimeoutMs: settings.redisCommandTimeoutMs,
      tlsCaFile: settings.redisTlsCaFile,
      logger,
    });
    const ring = new ShardRing(settings.redisShards.map((shard) => shard.name));
    return { store: new RedisShardStore({ shards, ring, clock, keyPrefix: settings.redisKeyPrefix }), kind: 'redis' };
  };

  return {
    rules,
    logger,
    counters: () => running?.limiter.counters,
    async start() {
      await rules.start();
      const { store, kind } = await createStore();
      const limiter = new RateLimiter({
        store,
        clock,
        rules: () => rules.current(),
        responseHeaders: settings.responseHeaders,
        shadowMode: settings.shadowMode,
        // A local copy only saves something when the store is remote.
        recordCacheTtlMs: kind === 'redis' ? settings.bucketCacheTtlMs : 0,
        idempotencyTtlMs: settings.idempotencyTtlMs,
      });
      const grpc = new GrpcServer({
        host: settings.grpcHost,
        port: settings.grpcPort,
        rls: createRlsHandlers({ decider: limiter, logger }),
        logger,
      });
      const timers: NodeJS.Timeout[] = [];
      running = { store, limiter, grpc, timers };

      let storeAnswers = false;
      const refreshHealth = (): void => grpc.setServing(!stopping && storeAnswers && rules.current() !== undefined);
      const checkStore = async (): Promise<void> => {
        try {
          await store.ping();
          if (!storeAnswers) logger.info('bucket store answers');
          storeAnswers = true;
        } catch (error) {
          if (storeAnswers) logger.error({ err: errorMessage(error) }, 'bucket store stopped answering');
          storeAnswers = false;
        }
        refreshHealth();
      };
      const every = (intervalMs: number, task: () => void): void => {
        const timer = setInterval(task, intervalMs);
        timer.unref();
        timers.push(timer);
      };
      rules.onLoaded(refreshHealth);
      await checkStore();
      every(overrides.healthCheckIntervalMs ?? 1000, () => void checkStore());
      if (store instanceof MemoryBucketStore) every(1000, () => store.sweepExpired());
      else every(1000, () => void limiter.writeBackFallbackDebts().catch((error: unknown) => logger.warn({ err: errorMessage(error) }, 'write-back failed')));
      const grpcPort = await grpc.start();
      logger.info({ grpcPort, configDir: settings.configDir, store: kind, shards: settings.redisShards.map((shard) => shard.name) }, 'ringlimit serving');
      return { grpcPort };
    },
    async stop() {
      stopping = true;
      rules.close();
      if (running !== undefined) {
        running.grpc.setServing(false);
        for (const timer of running.timers) clearInterval(timer);
        await running.grpc.stop(settings.shutdownGraceMs);
        // What fallback buckets admitted during an outage is owed to the shards: settle it if they answer.
        await running.limiter.writeBackFallbackDebts().catch((error: unknown) => logger.warn({ err: errorMessage(error) }, 'write-back at stop failed'));
        await running.store.close();
      }
      logger.info({ engine: running?.limiter.counters }, 'ringlimit stopped');
    },
  };
}
