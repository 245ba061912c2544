import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisClientOptions {
  readonly url: string;
  /** Fails a command that takes longer; kept small because Envoy waits 20 ms in all. */
  readonly commandTimeoutMs: number;
  /** PEM bundle trusted for rediss:// shards with a private CA. */
  readonly tlsCaFile?: string | undefined;
  /** Password for a shard whose URL carries none (REDIS_PASSWORD_FILE). */
  readonly password?: string | undefined;
}

/** The ioredis commands ringlimit's scripts add. */
export interface BucketCommands {
  bucketCommit(...keysThenArgs: (string | number)[]): Promise<(number | string)[]>;
}

export type ShardClient = Redis & BucketCommands;

/** Compiled to build/src/store/redis; the .lua stays beside its source. */
const BUCKET_COMMIT_LUA = readFileSync(join(__dirname, '..', '..', '..', '..', 'src', 'store', 'redis', 'bucket-commit.lua'), 'utf8');

/**
 * An ioredis client that fails fast: no offline queue (a dead shard answers at once instead of
 * piling up latency), nothing sent again after a reconnect, a command timeout, and lazy connect
 * so start-up can report an unreachable shard or a wrong password by name.
 */
export function createShardClient(options: RedisClientOptions): ShardClient {
  const redisOptions: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    // No auto-pipelining: the commits, the only commands on the request path, are already
    // gathered into one script call per shard (CommitBatcher), and a pipeline per script call
    // cost about 10 µs of CPU per decision (bench, 1,000 keys: 125 against 135-142 µs).
    enableAutoPipelining: false,
    maxRetriesPerRequest: 1,
    // A command unanswered when its connection dropped has already failed its caller (ShardCalls
    // gives up at the close, and the engine decided by fallback); sent again after the
    // reconnect, a commit would take tokens a second time for calls already answered.
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: 2000,
    // Reconnect soon after a shard returns: an attempt at most every 500 ms costs a dead shard nothing.
    retryStrategy: (attempt) => Math.min(5 * 2 ** (attempt - 1), 500),
    reconnectOnError: () => false,
  };
  if (options.password !== undefined && new URL(options.url).password === '') redisOptions.password = options.password;
  if (options.url.startsWith('rediss://')) {
    redisOptions.tls = options.tlsCaFile === undefined ? {} : { ca: readFileSync(options.tlsCaFile) };
  }
  const client = new Redis(options.url, redisOptions);
  // defineCommand sends EVALSHA and falls back to EVAL when the shard does not know the script yet.
  client.defineCommand('bucketCommit', { lua: BUCKET_COMMIT_LUA });
  return client as ShardClient;
}

/** The URL with any password replaced, safe to log. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = 'redacted';
    return parsed.toString();
  } catch {
    return '<unparsable redis url>';
  }
}
