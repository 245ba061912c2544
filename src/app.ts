import type { Logger } from 'pino';
import { errorMessage, systemClock, type BucketStore, type Clock } from './core';
import { FileRuleSource } from './config/file-rule-source';
import { RateLimiter, type EngineCounters } from './limiter/rate-limiter';
import { createLogger } from './observability/logger';
import { GrpcServer } from './server/grpc/grpc-server';
import { createRlsHandlers } from './server/grpc/rls-service';
import type { Settings, ShardSetting } from './settings/settings';
import { ShardListFile } from './settings/shard-list-file';
import { MemoryBucketStore } from './store/memory-store';
import { connectShards } from './store/redis/connect-shards';
import type { ShardClient } from './store/redis/redis-client';
import { RedisShardStore } from './store/redis/redis-shard-store';

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
  /** Re-reads the rules and the shard list file now (SIGHUP); a bad one is logged and the last good one kept. */
  reload(): Promise<void>;
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

  const shardFile = settings.redisShardsFile === undefined ? undefined : new ShardListFile(settings.redisShardsFile);
  /** The shard clients in use, with the URL each was made for, so a reload reuses unchanged ones. */
  let shardUrls = new Map<string, string>();
  const connect = (shards: readonly ShardSetting[]): Promise<Map<string, ShardClient>> =>
    connectShards({ shards, commandTimeoutMs: settings.redisCommandTimeoutMs, tlsCaFile: settings.redisTlsCaFile, logger });

  const createStore = async (): Promise<{ store: BucketStore; kind: string }> => {
    if (overrides.store !== undefined) return { store: overrides.store, kind: 'custom' };
    const fromFile = await shardFile?.readIfChanged();
    const shardList = fromFile?.shards ?? settings.redisShards;
    if (shardList.length === 0) {
      return { store: new MemoryBucketStore({ clock, maxBuckets: settings.memoryMaxBuckets }), kind: 'memory' };
    }
    const shards = await connect(shardList);
    fromFile?.accept();
    shardUrls = new Map(shardList.map(({ name, url }) => [name, url]));
    const store = new RedisShardStore({
      shards,
      clock,
      keyPrefix: settings.redisKeyPrefix,
      commandTimeoutMs: settings.redisCommandTimeoutMs,
      handoffMs: settings.shardHandoffMs,
    });
    return { store, kind: 'redis' };
  };

  /** Applies a changed shard list file: new and changed shards are connected, the ring moves, moved buckets are handed off. */
  const reloadShards = async (store: BucketStore): Promise<void> => {
    if (shardFile === undefined || !(store instanceof RedisShardStore)) return;
    const changed = await shardFile.readIfChanged();
    if (changed === undefined) return;
    const unchanged = new Map([...store.shards].filter(([name]) => changed.shards.some((shard) => shard.name === name && shard.url === shardUrls.get(name))));
    const connected = await connect(changed.shards.filter(({ name }) => !unchanged.has(name)));
    const before = [...store.shards.keys()];
    store.reshard(new Map(changed.shards.map(({ name }) => [name, (unchanged.get(name) ?? connected.get(name)) as ShardClient])));
    shardUrls = new Map(changed.shards.map(({ name, url }) => [name, url]));
    changed.accept();
    const after = changed.shards.map(({ name }) => name);
    logger.info(
      { shards: after, added: after.filter((name) => !before.includes(name)), removed: before.filter((name) => !after.includes(name)), handoffMs: settings.shardHandoffMs },
      'shard list reloaded',
    );
  };
  let lastShardReloadError = '';
  let shardReloading = Promise.resolve();
  /** One reload at a time (the poll and SIGHUP may meet); each distinct problem is logged once, as the file is polled every second. */
  const reloadShardsLogged = (store: BucketStore): Promise<void> => {
    shardReloading = shardReloading.then(async () => {
      try {
        await reloadShards(store);
        lastShardReloadError = '';
      } catch (error) {
        if (errorMessage(error) !== lastShardReloadError) logger.error({ err: errorMessage(error) }, 'shard list not reloaded; the last good one stays in force');
        lastShardReloadError = errorMessage(error);
      }
    });
    return shardReloading;
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
      if (shardFile !== undefined) every(1000, () => void reloadShardsLogged(store));
      const grpcPort = await grpc.start();
      logger.info({ grpcPort, configDir: settings.configDir, store: kind, shards: [...shardUrls.keys()] }, 'ringlimit serving');
      return { grpcPort };
    },
    async reload() {
      await rules.reload();
      if (running !== undefined) await reloadShardsLogged(running.store);
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
      const store = running?.store;
      logger.info({ engine: running?.limiter.counters, store: store instanceof RedisShardStore ? store.counters : undefined }, 'ringlimit stopped');
    },
  };
}
