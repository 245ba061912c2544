/** Time units of envoyproxy/ratelimit's config and of RLS v3's RateLimitUnit. */
export type TimeUnit = 'second' | 'minute' | 'hour' | 'day' | 'week' | 'month' | 'year';

/**
 * Window length of each unit, as envoyproxy/ratelimit's UnitToDivider defines it:
 * a month is 30 days and a year 365 days, both aligned to the unix epoch.
 */
export const UNIT_SECONDS: Readonly<Record<TimeUnit, number>> = Object.freeze({
  second: 1,
  minute: 60,
  hour: 3600,
  day: 86400,
  week: 604800,
  month: 2592000,
  year: 31536000,
});

export const TIME_UNITS: readonly TimeUnit[] = Object.freeze(Object.keys(UNIT_SECONDS) as TimeUnit[]);

export type Algorithm = 'token_bucket' | 'fixed_window';

/** The largest value of a uint32 field; an unlimited rule reports it as limit_remaining. */
export const MAX_UINT32 = 4294967295;

/** One limit a bucket enforces. `capacity` is the burst a token bucket holds when full. */
export interface Limit {
  readonly requestsPerUnit: number;
  readonly unit: TimeUnit;
  readonly capacity: number;
  readonly algorithm: Algorithm;
}

/** A limit as configured: what the response names in current_limit. */
export interface NamedLimit extends Limit {
  readonly name: string;
}

/**
 * What a shard stores per bucket. For a token bucket `tokens` is the level at `updatedAtMs`;
 * for a fixed window `updatedAtMs` is the window's start and `tokens` is the requests_per_unit
 * minus the hits counted in that window (negative once over, as the reference keeps counting).
 */
export interface BucketState {
  readonly tokens: number;
  readonly updatedAtMs: number;
}

/** A bucket record with the version its next conditional write must name. */
export interface VersionedBucket {
  readonly state: BucketState;
  readonly version: number;
}

export interface DescriptorEntry {
  readonly key: string;
  readonly value: string;
}

/** A limit chosen by the caller (RLS `RateLimitDescriptor.limit`). */
export interface LimitOverride {
  readonly requestsPerUnit: number;
  readonly unit: TimeUnit;
}

export interface RequestDescriptor {
  readonly entries: readonly DescriptorEntry[];
  readonly override?: LimitOverride | undefined;
  /** Per-descriptor hits; when present (even 0) it wins over the request's hits. 0 = check only. */
  readonly hits?: number | undefined;
}

export interface RateLimitQuery {
  readonly domain: string;
  readonly descriptors: readonly RequestDescriptor[];
  /** Request-level hits for every descriptor; 0 means 1, as in RLS v3. */
  readonly hits: number;
  /** A retry of the same id gets the first answer and consumes nothing (x-request-id). */
  readonly requestId?: string | undefined;
  /** How long the caller waits for the answer (its gRPC deadline), in real milliseconds; absent = no deadline. */
  readonly timeBudgetMs?: number | undefined;
}

export type Code = 'OK' | 'OVER_LIMIT';

export interface DescriptorStatus {
  readonly code: Code;
  /** Absent when no limit applies (no match, unlimited, replaced, unknown domain). */
  readonly currentLimit?: { readonly requestsPerUnit: number; readonly unit: TimeUnit; readonly name: string };
  readonly limitRemaining: number;
  /** Absent exactly when currentLimit is. */
  readonly resetAfterMs?: number;
  /** Whole tokens the reported limit holds after the decision, also when over limit (limitRemaining is 0 then). */
  readonly available?: number;
  /** Over limit, but answered OK because the rule is in shadow mode. */
  readonly shadowed?: boolean;
}

/** POST /rate: a caller-defined token bucket, stored and sharded like any other. */
export interface BucketRateRequest {
  readonly bucketId: string;
  readonly capacity: number;
  /** Tokens added per second. */
  readonly refillPerSecond: number;
  readonly tokens: number;
  readonly requestId?: string | undefined;
  readonly timeBudgetMs?: number | undefined;
}

export interface BucketRateOutcome {
  readonly allowed: boolean;
  /** Whole tokens left after this request. */
  readonly remaining: number;
  /** 0 when allowed; otherwise how long until the bucket holds the tokens asked for. */
  readonly retryAfterMs: number;
  /** How long until the bucket is full again. */
  readonly resetAfterMs: number;
}

/**
 * An operator's temporary change of a limit (the admin API), for one bucket or for every bucket
 * of one rule, in force until `expiresAtMs`; then the configured limit applies again.
 */
export interface CapacityOverride {
  readonly target: OverrideTarget;
  /** New bucket capacity (burst); absent = unchanged. */
  readonly capacity?: number | undefined;
  /** New refill, in requests per the limit's unit; absent = unchanged. */
  readonly requestsPerUnit?: number | undefined;
  /** Only the target's limit of this unit (a rule may have one per unit); absent = all of them. */
  readonly unit?: TimeUnit | undefined;
  readonly expiresAtMs: number;
}

/** A bucket id (as /bucket/status shows it), or a rule by its full key (as /rlconfig shows it). */
export type OverrideTarget = { readonly bucket: string; readonly rule?: undefined } | { readonly rule: string; readonly bucket?: undefined };

export interface HeaderValue {
  readonly key: string;
  readonly value: string;
}

export interface RateLimitOutcome {
  readonly overallCode: Code;
  /** One per query descriptor, in query order. */
  readonly statuses: readonly DescriptorStatus[];
  readonly responseHeaders: readonly HeaderValue[];
}

/** A server's certificate and key (PEM), and the CA its clients' certificates must chain to (mTLS). */
export interface ServerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Present = mutual TLS: a client without a certificate from this CA is refused. */
  readonly clientCa?: Buffer | undefined;
}

/** How a server is reached, for its start-up log line. */
export function tlsMode(tls: ServerTls | undefined): 'plaintext' | 'tls' | 'mtls' {
  if (tls === undefined) return 'plaintext';
  return tls.clientCa === undefined ? 'tls' : 'mtls';
}

/** The largest request the engine decides; anything larger is refused before any bucket is touched. */
export interface RequestLimits {
  readonly maxDescriptors: number;
  readonly maxEntriesPerDescriptor: number;
  /** Characters in a domain, an entry key or value, a bucket id or a request id. */
  readonly maxValueLength: number;
}
