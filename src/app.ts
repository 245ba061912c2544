import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { SettingsError, errorMessage, systemClock, type BucketStore, type Clock, type ServerTls, type StoreObserver } from './core';
import { describeRuleSet } from './config/describe-rules';
import { FileRuleSource } from './config/file-rule-source';
import { ControlPlane } from './limiter/control-plane';
import { RateLimiter, type EngineCounters } from './limiter/rate-limiter';
import { createLogger } from './observability/logger';
import { Metrics } from './observability/metrics';
import { startTracing } from './observability/tracing';
import { GrpcServer } from './server/grpc/grpc-server';
import { createRlsHandlers } from './server/grpc/rls-service';
import { httpRoutes } from './server/http/routes';
import { HttpServer } from './server/http/http-server';
import type { HealthReport } from './server/http/status-routes';
import type { Settings, ShardSetting, TlsFiles } from './settings/settings';
import { ShardListFile } from './settings/shard-list-file';
import { MemoryBucketStore } from './store/memory-store';
import { MemoryOverrideStore } from './store/memory-override-store';
import { RedisOverrideStore } from './store/redis/redis-override-store';
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
  /** Loads the rules, connects the store, binds the servers; resolves with the bound ports. */
  start(): Promise<{ grpcPort: number; httpPort: number }>;
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
  readonly http: HttpServer;
  readonly metrics: Metrics;
  readonly stopTracing: (() => Promise<void>) | undefined;
  readonly timers: NodeJS.Timeout[];
}

/** How often each instance re-reads the operators' overrides (so one set on another instance applies here). */
const OVERRIDE_REFRESH_MS = 1000;
/** How often each instance stamps its heartbeat on every shard (replication lag). */
const HEARTBEAT_INTERVAL_MS = 1000;

/** Longest the shutdown waits for shards to take what fallback buckets admitted. */
const FINAL_WRITE_BACK_MS = 3000;

/**
 * What fallback buckets admitted during an outage is owed to the shards: at shutdown, keep
 * trying (a shard that just came back may still be reconnecting) until it is settled or `budgetMs`
 * is spent; what is still owed then is logged, as it is lost with the process.
 */
async function settleFallbackDebts(limiter: RateLimiter, budgetMs: number, logger: Logger): Promise<void> {
  const giveUpAt = Date.now() + budgetMs;
  for (;;) {
    await limiter.writeBackFallbackDebts(true).catch((error: unknown) => logger.warn({ err: errorMessage(error) }, 'write-back at stop failed'));
    if (!limiter.owesFallbackDebts) return;
    if (Date.now() >= giveUpAt) {
      logger.error('fallback admissions not written back: their shards did not answer before the shutdown ended');
      return;
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

/** A secret from a file (a mounted Kubernetes secret): its first line, without the newline editors add. */
function readSecret(setting: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new SettingsError(setting, `cannot read ${path}: ${errorMessage(error)}`);
  }
  const secret = text.split(/\r?\n/)[0] ?? '';
  if (secret === '') throw new SettingsError(setting, `${path} is empty`);
  return secret;
}

/** The servers' PEM files, read once at start; an unreadable one stops the start naming its setting. */
function readServerTls(files: TlsFiles | undefined): ServerTls | undefined {
  if (files === undefined) return undefined;
  const read = (setting: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new SettingsError(setting, `cannot read ${path}: ${errorMessage(error)}`);
    }
  };
  return {
    cert: read('TLS_CERT_FILE', files.certFile),
    key: read('TLS_KEY_FILE', files.keyFile),
    clientCa: files.clientCaFile === undefined ? undefined : read('TLS_CLIENT_CA_FILE', files.clientCaFile),
  };
}

function describeLoadedRules(rules: FileRuleSource): string[] | undefined {
  const current = rules.current();
  return current === undefined ? undefined : describeRuleSet(current);
}

/**
 * Stamps this region's heartbeat on every shard and sets, per other region, how far behind its
 * newest stamp is beyond its stamping interval (worst shard): 0 while stamps flow.
 */
async function exchangeHeartbeats(store: RedisShardStore, metrics: Metrics, region: string): Promise<void> {
  const worst = new Map<string, number>();
  for (const { region: from, ageMs } of await store.exchangeHeartbeats(region, 60 * HEARTBEAT_INTERVAL_MS)) {
    if (from === region) continue;
    worst.set(from, Math.max(worst.get(from) ?? 0, Math.max(0, ageMs - HEARTBEAT_INTERVAL_MS) / 1000));
  }
  for (const [from, seconds] of worst) metrics.replicationLag(from, region, seconds);
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
  const redisPassword = settings.redisPasswordFile === undefined ? undefined : readSecret('REDIS_PASSWORD_FILE', settings.redisPasswordFile);
  const connect = (shards: readonly ShardSetting[]): Promise<Map<string, ShardClient>> =>
    connectShards({ shards, commandTimeoutMs: settings.redisCommandTimeoutMs, tlsCaFile: settings.redisTlsCaFile, password: redisPassword, logger });

  const createStore = async (observer: StoreObserver): Promise<{ store: BucketStore; kind: string }> => {
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
      observer,
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
      const tls = readServerTls(settings.tls);
      const adminToken = settings.adminTokenFile === undefined ? settings.adminToken : readSecret('ADMIN_TOKEN_FILE', settings.adminTokenFile);
      await rules.start();
      const stopTracing = settings.otlpEndpoint === undefined ? undefined : startTracing({ region: settings.region });
      const metrics = new Metrics({ region: settings.region, otlpEndpoint: settings.otlpEndpoint });
      const { store, kind } = await createStore(metrics);
      const limiter = new RateLimiter({
        store,
        clock,
        rules: () => rules.current(),
        responseHeaders: settings.responseHeaders,
        shadowMode: settings.shadowMode,
        // A local copy only saves something when the store is remote.
        recordCacheTtlMs: kind === 'redis' ? settings.bucketCacheTtlMs : 0,
        idempotencyTtlMs: settings.idempotencyTtlMs,
        observer: metrics,
        tracing: stopTracing !== undefined,
        limits: settings.requestLimits,
        maxCallsInFlight: settings.maxCallsInFlight,
      });
      const controlPlane = new ControlPlane(limiter, store instanceof RedisShardStore ? new RedisOverrideStore(store) : new MemoryOverrideStore(), clock);
      const grpc = new GrpcServer({
        host: settings.grpcHost,
        port: settings.grpcPort,
        rls: createRlsHandlers({ decider: limiter, logger }),
        logger,
        tls,
        maxMessageBytes: settings.grpcMaxMessageBytes,
      });

      let storeHealth: HealthReport['store'] = { kind, ok: false, shards: [] };
      const serving = (): boolean => !stopping && storeHealth.ok && rules.current() !== undefined;
      const refreshHealth = (): void => grpc.setServing(serving());
      /** Probes the store now; the gRPC health service and /healthz both answer from it. */
      const checkHealth = async (): Promise<HealthReport> => {
        const wasOk = storeHealth.ok;
        const shards = store instanceof RedisShardStore ? await store.health() : [];
        const ok = store instanceof RedisShardStore ? shards.every((shard) => shard.ok) : await store.ping().then(() => true, () => false);
        storeHealth = { kind, ok, shards };
        if (ok && !wasOk) logger.info('bucket store answers');
        if (!ok && wasOk) logger.error({ shards: shards.filter((shard) => !shard.ok) }, 'bucket store stopped answering');
        refreshHealth();
        const current = rules.current();
        return {
          serving: serving(),
          region: settings.region,
          config: { loaded: current !== undefined, domains: current?.domains.size ?? 0, lastError: rules.lastError()?.message },
          store: storeHealth,
          shuttingDown: stopping,
        };
      };
      const http = new HttpServer({
        host: settings.httpHost,
        port: settings.httpPort,
        maxBodyBytes: settings.httpMaxBodyBytes,
        logger,
        tls,
        routes: httpRoutes({ limiter, controlPlane, metrics, health: checkHealth, adminToken, describeRules: () => describeLoadedRules(rules) }),
      });
      const timers: NodeJS.Timeout[] = [];
      running = { store, limiter, grpc, http, timers, metrics, stopTracing };

      const every = (intervalMs: number, task: () => Promise<unknown> | void, what: string): void => {
        const timer = setInterval(() => {
          void Promise.resolve()
            .then(task)
            .catch((error: unknown) => logger.warn({ err: errorMessage(error) }, `${what} failed`));
        }, intervalMs);
        timer.unref();
        timers.push(timer);
      };
      rules.onLoaded(refreshHealth);
      await checkHealth();
      await controlPlane.refresh().catch((error: unknown) => logger.warn({ err: errorMessage(error) }, 'overrides not read at start'));
      every(overrides.healthCheckIntervalMs ?? 1000, checkHealth, 'health check');
      every(OVERRIDE_REFRESH_MS, () => controlPlane.refresh(), 'override refresh');
      if (store instanceof MemoryBucketStore) {
        every(1000, () => {
          store.sweepExpired();
        }, 'expiry sweep');
      }
      if (store instanceof RedisShardStore) {
        every(1000, () => limiter.writeBackFallbackDebts(), 'write-back');
        every(HEARTBEAT_INTERVAL_MS, () => exchangeHeartbeats(store, metrics, settings.region), 'heartbeat');
      }
      if (shardFile !== undefined) every(1000, () => reloadShardsLogged(store), 'shard list reload');
      const grpcPort = await grpc.start();
      const httpPort = await http.start();
      logger.info({ grpcPort, httpPort, configDir: settings.configDir, store: kind, shards: [...shardUrls.keys()], admin: adminToken !== undefined }, 'ringlimit serving');
      return { grpcPort, httpPort };
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
        await Promise.all([running.grpc.stop(settings.shutdownGraceMs), running.http.stop()]);
        await settleFallbackDebts(running.limiter, Math.min(settings.shutdownGraceMs, FINAL_WRITE_BACK_MS), logger);
        await running.store.close();
        await running.metrics.shutdown().catch(() => undefined);
        await running.stopTracing?.().catch(() => undefined);
      }
      const store = running?.store;
      logger.info({ engine: running?.limiter.counters, store: store instanceof RedisShardStore ? store.counters : undefined }, 'ringlimit stopped');
    },
  };
}
