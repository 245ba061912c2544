import { join } from 'node:path';
import { SettingsError, type RequestLimits } from '../core';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface ResponseHeaderSettings {
  readonly limit: string;
  readonly remaining: string;
  readonly reset: string;
}

/** A named Redis shard: the ring hashes the name, so the URL can change without moving buckets. */
export interface ShardSetting {
  readonly name: string;
  readonly url: string;
}

/** Where the servers' certificate, key and (for mTLS) client CA are. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string | undefined;
}

/** Everything ringlimit reads from its environment and flags, validated once at start. */
export interface Settings {
  readonly grpcHost: string;
  readonly grpcPort: number;
  readonly httpHost: string;
  readonly httpPort: number;
  /** Largest HTTP request body accepted (413 beyond). */
  readonly httpMaxBodyBytes: number;
  /** Bearer token of the admin API; undefined = the admin API is off. */
  readonly adminToken: string | undefined;
  /** PEM files of the gRPC and HTTP servers' TLS; undefined = plaintext. */
  readonly tls: TlsFiles | undefined;
  /** OTLP collector for metrics and traces (the standard OTEL_EXPORTER_OTLP_ENDPOINT); undefined = none. */
  readonly otlpEndpoint: string | undefined;
  readonly configDir: string;
  readonly logLevel: LogLevel;
  /** RateLimit-* response headers; undefined when LIMIT_RESPONSE_HEADERS_ENABLED is false. */
  readonly responseHeaders: ResponseHeaderSettings | undefined;
  readonly shadowMode: boolean;
  readonly memoryMaxBuckets: number;
  readonly shutdownGraceMs: number;
  /** From REDIS_SHARDS or REDIS_URL; empty (and no shards file): the embedded memory store. */
  readonly redisShards: readonly ShardSetting[];
  /** A file holding the shard list instead, re-read when it changes and on SIGHUP. */
  readonly redisShardsFile: string | undefined;
  /** How long after a shard-list change buckets are still read from their previous owner (ms). */
  readonly shardHandoffMs: number;
  readonly redisCommandTimeoutMs: number;
  readonly redisTlsCaFile: string | undefined;
  readonly redisKeyPrefix: string;
  /** How long the engine trusts its local copy of a Redis bucket record (0 = always read). */
  readonly bucketCacheTtlMs: number;
  /** How long the answer to an x-request-id is kept for its retries (0 = ignore request ids). */
  readonly idempotencyTtlMs: number;
  /** The region this instance runs in (reported in logs and health). */
  readonly region: string;
  /** Processes serving the same ports (node:cluster); more than 1 needs a shared (Redis) store. */
  readonly workers: number;
  /** Largest gRPC message accepted (RESOURCE_EXHAUSTED beyond). */
  readonly grpcMaxMessageBytes: number;
  readonly requestLimits: RequestLimits;
  /** Calls decided at once at most; beyond it calls are refused UNAVAILABLE at once (0 = no bound). */
  readonly maxCallsInFlight: number;
  /** A file holding the admin token (Kubernetes secret), instead of ADMIN_TOKEN. */
  readonly adminTokenFile: string | undefined;
  /** A file holding the password for shards whose URL has none. */
  readonly redisPasswordFile: string | undefined;
}

/** Command-line flags; each wins over its environment variable. */
export interface SettingsFlags {
  readonly grpcHost?: string | undefined;
  readonly grpcPort?: string | undefined;
  readonly httpPort?: string | undefined;
  readonly configDir?: string | undefined;
  readonly logLevel?: string | undefined;
}

export type Environment = Readonly<Record<string, string | undefined>>;

export function loadSettings(env: Environment, flags: SettingsFlags = {}): Settings {
  const read = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const headersEnabled = parseBool('LIMIT_RESPONSE_HEADERS_ENABLED', read('LIMIT_RESPONSE_HEADERS_ENABLED'), false);
  return Object.freeze({
    grpcHost: flags.grpcHost ?? read('GRPC_HOST') ?? '0.0.0.0',
    grpcPort: parsePort(flags.grpcPort === undefined ? 'GRPC_PORT' : '--grpc-port', flags.grpcPort ?? read('GRPC_PORT'), 8081),
    httpHost: read('HTTP_HOST') ?? '0.0.0.0',
    httpPort: parsePort(flags.httpPort === undefined ? 'HTTP_PORT' : '--http-port', flags.httpPort ?? read('HTTP_PORT'), 8080),
    httpMaxBodyBytes: parsePositiveInt('HTTP_MAX_BODY_BYTES', read('HTTP_MAX_BODY_BYTES'), 1_048_576),
    adminToken: read('ADMIN_TOKEN'),
    otlpEndpoint: read('OTEL_EXPORTER_OTLP_ENDPOINT'),
    tls: parseTlsFiles(read),
    configDir: flags.configDir ?? read('CONFIG_DIR') ?? runtimeConfigDir(read) ?? './config',
    logLevel: parseLogLevel(flags.logLevel === undefined ? 'LOG_LEVEL' : '--log-level', flags.logLevel ?? read('LOG_LEVEL')),
    responseHeaders: headersEnabled
      ? Object.freeze({
          limit: read('LIMIT_LIMIT_HEADER') ?? 'RateLimit-Limit',
          remaining: read('LIMIT_REMAINING_HEADER') ?? 'RateLimit-Remaining',
          reset: read('LIMIT_RESET_HEADER') ?? 'RateLimit-Reset',
        })
      : undefined,
    shadowMode: parseBool('SHADOW_MODE', read('SHADOW_MODE'), false),
    memoryMaxBuckets: parsePositiveInt('MEMORY_STORE_MAX_BUCKETS', read('MEMORY_STORE_MAX_BUCKETS'), 1_000_000),
    shutdownGraceMs: parsePositiveInt('SHUTDOWN_GRACE_MS', read('SHUTDOWN_GRACE_MS'), 10_000),
    redisShards: parseShards(read),
    redisShardsFile: read('REDIS_SHARDS_FILE'),
    shardHandoffMs: parsePositiveInt('SHARD_HANDOFF_MS', read('SHARD_HANDOFF_MS'), 86_400_000),
    redisCommandTimeoutMs: parsePositiveInt('REDIS_COMMAND_TIMEOUT_MS', read('REDIS_COMMAND_TIMEOUT_MS'), 100),
    redisTlsCaFile: read('REDIS_TLS_CA_FILE'),
    redisKeyPrefix: read('REDIS_KEY_PREFIX') ?? read('CACHE_KEY_PREFIX') ?? 'rl:',
    bucketCacheTtlMs: parseNonNegativeInt('BUCKET_CACHE_TTL_MS', read('BUCKET_CACHE_TTL_MS'), 2000),
    idempotencyTtlMs: parseNonNegativeInt('IDEMPOTENCY_TTL_MS', read('IDEMPOTENCY_TTL_MS'), 60_000),
    region: read('REGION') ?? 'local',
    workers: parseWorkers(read),
    grpcMaxMessageBytes: parsePositiveInt('GRPC_MAX_MESSAGE_BYTES', read('GRPC_MAX_MESSAGE_BYTES'), 1_048_576),
    requestLimits: Object.freeze({
      maxDescriptors: parsePositiveInt('MAX_DESCRIPTORS_PER_REQUEST', read('MAX_DESCRIPTORS_PER_REQUEST'), 64),
      maxEntriesPerDescriptor: parsePositiveInt('MAX_ENTRIES_PER_DESCRIPTOR', read('MAX_ENTRIES_PER_DESCRIPTOR'), 32),
      maxValueLength: parsePositiveInt('MAX_VALUE_LENGTH', read('MAX_VALUE_LENGTH'), 1024),
    }),
    maxCallsInFlight: parseNonNegativeInt('MAX_CALLS_IN_FLIGHT', read('MAX_CALLS_IN_FLIGHT'), 1000),
    adminTokenFile: secretFile(read, 'ADMIN_TOKEN'),
    redisPasswordFile: read('REDIS_PASSWORD_FILE'),
  });
}

/** NAME_FILE: a secret read from a file; not together with NAME itself. */
function secretFile(read: (name: string) => string | undefined, name: string): string | undefined {
  const file = read(`${name}_FILE`);
  if (file !== undefined && read(name) !== undefined) throw new SettingsError(`${name}_FILE`, `set either ${name} or ${name}_FILE, not both`);
  return file;
}

/** WORKERS: a memory store is per process, so several workers would each enforce the whole limit. */
function parseWorkers(read: (name: string) => string | undefined): number {
  const workers = parsePositiveInt('WORKERS', read('WORKERS'), 1);
  if (workers > 1 && read('REDIS_SHARDS') === undefined && read('REDIS_URL') === undefined && read('REDIS_SHARDS_FILE') === undefined) {
    throw new SettingsError('WORKERS', 'more than one worker needs a shared store (REDIS_SHARDS, REDIS_URL or REDIS_SHARDS_FILE): each would keep its own buckets');
  }
  return workers;
}

/** TLS_CERT_FILE + TLS_KEY_FILE (+ TLS_CLIENT_CA_FILE for mTLS); envoyproxy/ratelimit's GRPC_SERVER_TLS_* names also work. */
function parseTlsFiles(read: (name: string) => string | undefined): TlsFiles | undefined {
  const certFile = read('TLS_CERT_FILE') ?? read('GRPC_SERVER_TLS_CERT');
  const keyFile = read('TLS_KEY_FILE') ?? read('GRPC_SERVER_TLS_KEY');
  const clientCaFile = read('TLS_CLIENT_CA_FILE') ?? read('GRPC_CLIENT_TLS_CACERT');
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined) throw new SettingsError('TLS_CLIENT_CA_FILE', 'mTLS needs TLS_CERT_FILE and TLS_KEY_FILE as well');
    return undefined;
  }
  if (certFile === undefined) throw new SettingsError('TLS_CERT_FILE', 'TLS_KEY_FILE is set; the certificate is missing');
  if (keyFile === undefined) throw new SettingsError('TLS_KEY_FILE', 'TLS_CERT_FILE is set; the key is missing');
  return { certFile, keyFile, clientCaFile };
}

/** envoyproxy/ratelimit loads RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/RUNTIME_APPDIRECTORY (default `config`). */
function runtimeConfigDir(read: (name: string) => string | undefined): string | undefined {
  const root = read('RUNTIME_ROOT');
  const subdirectory = read('RUNTIME_SUBDIRECTORY');
  if (root === undefined && subdirectory === undefined) return undefined;
  return join(root ?? '/srv/runtime_data/current', subdirectory ?? '', read('RUNTIME_APPDIRECTORY') ?? 'config');
}

const SHARD_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** REDIS_SHARDS="us-east=redis://…,eu-west=rediss://…"; REDIS_URL alone is one shard, "default". */
function parseShards(read: (name: string) => string | undefined): ShardSetting[] {
  const list = read('REDIS_SHARDS');
  const single = read('REDIS_URL');
  const file = read('REDIS_SHARDS_FILE');
  if (file !== undefined && (list !== undefined || single !== undefined)) {
    throw new SettingsError('REDIS_SHARDS_FILE', 'set either REDIS_SHARDS_FILE or REDIS_SHARDS/REDIS_URL, not both');
  }
  if (list === undefined) return single === undefined ? [] : [{ name: 'default', url: checkRedisUrl('REDIS_URL', single) }];
  return parseShardList('REDIS_SHARDS', list);
}

/**
 * A shard list: `name=redis://host:port` entries separated by commas or new lines; in a file,
 * blank lines and `#` comments are ignored. `source` names where the list came from, for errors.
 */
export function parseShardList(source: string, list: string): ShardSetting[] {
  const entries = list
    .split(/[,\n]/)
    .map((entry) => entry.replace(/#.*$/, '').trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new SettingsError(source, 'expected at least one name=redis://host:port entry');
  const shards = entries.map((entry) => {
    const separator = entry.indexOf('=');
    const name = entry.slice(0, separator).trim();
    if (separator === -1 || !SHARD_NAME.test(name)) {
      throw new SettingsError(source, `expected name=redis://host:port entries separated by commas; bad entry '${entry.replace(/\/\/[^@]*@/, '//…@')}'`);
    }
    return { name, url: checkRedisUrl(`${source}[${name}]`, entry.slice(separator + 1).trim()) };
  });
  const names = new Set<string>();
  for (const { name } of shards) {
    if (names.has(name)) throw new SettingsError(source, `shard '${name}' is named twice`);
    names.add(name);
  }
  return shards;
}

function checkRedisUrl(setting: string, url: string): string {
  if (!/^rediss?:\/\/[^/]/.test(url)) throw new SettingsError(setting, 'expected a redis:// or rediss:// URL');
  return url;
}

function parsePort(setting: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new SettingsError(setting, `expected a port number from 0 to 65535, got '${text}'`);
  return port;
}

function parsePositiveInt(setting: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || !Number.isSafeInteger(value)) {
    throw new SettingsError(setting, `expected a positive whole number, got '${text}'`);
  }
  return value;
}

function parseNonNegativeInt(setting: string, text: string | undefined, fallback: number): number {
  return text === '0' ? 0 : parsePositiveInt(setting, text, fallback);
}

/** Accepts what Go's strconv.ParseBool does, as envoyproxy/ratelimit's settings are read with it. */
function parseBool(setting: string, text: string | undefined, fallback: boolean): boolean {
  if (text === undefined) return fallback;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(text)) return false;
  throw new SettingsError(setting, `expected true or false, got '${text}'`);
}

const LOG_LEVELS: Readonly<Record<string, LogLevel>> = {
  trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', warning: 'warn',
  error: 'error', fatal: 'fatal', panic: 'fatal', silent: 'silent',
};

function parseLogLevel(setting: string, text: string | undefined): LogLevel {
  if (text === undefined) return 'info';
  const level = LOG_LEVELS[text.toLowerCase()];
  if (level === undefined) throw new SettingsError(setting, `expected one of ${Object.keys(LOG_LEVELS).join(', ')}, got '${text}'`);
  return level;
}
