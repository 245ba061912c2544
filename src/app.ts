import type { Logger } from 'pino';
import { errorMessage, systemClock, type BucketStore, type Clock } from './core';
import { FileRuleSource } from './config/file-rule-source';
import { RateLimiter } from './limiter/rate-limiter';
import { createLogger } from './observability/logger';
import { GrpcServer } from './server/grpc/grpc-server';
import { createRlsHandlers } from './server/grpc/rls-service';
import type { Settings } from './settings/settings';
import { MemoryBucketStore } from './store/memory-store';

/** Parts a test (or a later composition) may supply instead of the defaults. */
export interface AppOverrides {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly store?: BucketStore;
  /** How often store connectivity is checked for health (ms). */
  readonly healthCheckIntervalMs?: number;
}

export interface App {
  /** Loads the rules, binds the servers; resolves with the bound gRPC port. */
  start(): Promise<{ grpcPort: number }>;
  /** Health goes NOT_SERVING, new calls are refused, in-flight calls finish (up to the grace time). */
  stop(): Promise<void>;
  readonly rules: FileRuleSource;
  readonly logger: Logger;
}

/** The composition root: the only place that knows every concrete part. */
export function createApp(settings: Settings, overrides: AppOverrides = {}): App {
  const logger = overrides.logger ?? createLogger({ level: settings.logLevel });
  const clock = overrides.clock ?? systemClock;
  const store: BucketStore = overrides.store ?? new MemoryBucketStore({ clock, maxBuckets: settings.memoryMaxBuckets });
  const memoryStore = store instanceof MemoryBucketStore ? store : undefined;
  const rules = new FileRuleSource({ dir: settings.configDir, logger });
  const limiter = new RateLimiter({
    store,
    clock,
    rules: () => rules.current(),
    responseHeaders: settings.responseHeaders,
    shadowMode: settings.shadowMode,
  });
  const grpc = new GrpcServer({
    host: settings.grpcHost,
    port: settings.grpcPort,
    rls: createRlsHandlers({ decider: limiter, logger }),
    logger,
  });

  let storeAnswers = false;
  let stopping = false;
  const timers: NodeJS.Timeout[] = [];
  const refreshHealth = (): void => grpc.setServing(!stopping && storeAnswers && rules.current() !== undefined);
  const checkStore = async (): Promise<void> => {
    try {
      await store.ping();
      storeAnswers = true;
    } catch (error) {
      if (storeAnswers) logger.error({ err: errorMessage(error) }, 'bucket store stopped answering');
      storeAnswers = false;
    }
    refreshHealth();
  };
  rules.onLoaded(refreshHealth);

  const every = (intervalMs: number, task: () => void): void => {
    const timer = setInterval(task, intervalMs);
    timer.unref();
    timers.push(timer);
  };

  return {
    rules,
    logger,
    async start() {
      await rules.start();
      await checkStore();
      every(overrides.healthCheckIntervalMs ?? 1000, () => void checkStore());
      if (memoryStore !== undefined) every(1000, () => memoryStore.sweepExpired());
      const grpcPort = await grpc.start();
      logger.info({ grpcPort, configDir: settings.configDir, store: memoryStore ? 'memory' : 'custom' }, 'ringlimit serving');
      return { grpcPort };
    },
    async stop() {
      stopping = true;
      refreshHealth();
      for (const timer of timers) clearInterval(timer);
      rules.close();
      await grpc.stop(settings.shutdownGraceMs);
      await store.close();
      logger.info('ringlimit stopped');
    },
  };
}
