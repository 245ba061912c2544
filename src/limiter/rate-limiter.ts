import {
  InvalidRequestError,
  NoConfigLoadedError,
  type AppliedLimit,
  type BucketStore,
  type Clock,
  type Code,
  type DescriptorStatus,
  type RateLimitOutcome,
  type RateLimitQuery,
  type VersionedBucket,
} from '../core';
import type { RuleSet } from '../config/rule-set';
import { BucketQueue } from './bucket-queue';
import { RecordCache } from './record-cache';
import { decideDescriptors, limitedStatus } from './decide-descriptors';
import { planDescriptors, type DescriptorPlan } from './descriptor-plan';
import { rateLimitHeaders, type ResponseHeaderNames } from './response-headers';

export interface RateLimiterOptions {
  readonly store: BucketStore;
  readonly clock: Clock;
  /** The rules in force; read once per call, so a reload never splits one request. */
  readonly rules: () => RuleSet | undefined;
  /** RateLimit-* response headers; absent = off (LIMIT_RESPONSE_HEADERS_ENABLED=false). */
  readonly responseHeaders?: ResponseHeaderNames | undefined;
  /** Global shadow mode: OVER_LIMIT overall answers become OK; statuses are left as they are. */
  readonly shadowMode?: boolean;
  /** Conditional writes tried before the store is asked to apply the decision itself. */
  readonly maxWriteAttempts?: number;
  /** Waits between conflicting attempts (injected so tests need not sleep). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Source of jitter in [0, 1). */
  readonly random?: () => number;
  /** Local copy of records (ms); worth it only for a remote store. 0 = always read the store. */
  readonly recordCacheTtlMs?: number;
}

/** What the engine did, for logs and metrics. */
export interface EngineCounters {
  decisions: number;
  storeReads: number;
  storeWrites: number;
  /** Conditional writes refused because another writer changed a bucket first. */
  writeConflicts: number;
  /** Decisions the store applied itself after the conditional writes kept losing. */
  shardApplied: number;
}

/** First backoff after a conflict; doubles per attempt, with full jitter. */
const CONFLICT_BACKOFF_MS = 1;

/**
 * The engine: query → matched limits → bucket decisions → one conditional write.
 * Knows nothing of gRPC, HTTP or YAML; errors are typed for the edge to classify.
 */
export class RateLimiter {
  private readonly store: BucketStore;
  private readonly clock: Clock;
  private readonly rules: () => RuleSet | undefined;
  private readonly responseHeaders: ResponseHeaderNames | undefined;
  private readonly shadowMode: boolean;
  private readonly maxWriteAttempts: number;
  private readonly queue = new BucketQueue();
  private readonly cache: RecordCache;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  readonly counters: EngineCounters = { decisions: 0, storeReads: 0, storeWrites: 0, writeConflicts: 0, shardApplied: 0 };

  constructor(options: RateLimiterOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.rules = options.rules;
    this.responseHeaders = options.responseHeaders;
    this.shadowMode = options.shadowMode ?? false;
    this.maxWriteAttempts = options.maxWriteAttempts ?? 4;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
    this.cache = new RecordCache({ ttlMs: options.recordCacheTtlMs ?? 0, maxEntries: 100_000 });
  }

  async shouldRateLimit(query: RateLimitQuery): Promise<RateLimitOutcome> {
    if (query.domain === '') throw new InvalidRequestError('domain', 'rate limit domain must not be empty');
    if (query.descriptors.length === 0) {
      throw new InvalidRequestError('descriptors', 'rate limit descriptor list must not be empty');
    }
    const rules = this.rules();
    if (rules === undefined) throw new NoConfigLoadedError();
    const plans = planDescriptors(query, rules.domains.get(query.domain));
    this.counters.decisions++;
    const statuses = await this.decide(plans);
    const quotaFlags = plans.map((plan) => plan.kind === 'limited' && plan.quotaMode);
    const computed = overallCode(statuses, quotaFlags);
    return {
      overallCode: this.shadowMode ? 'OK' : computed,
      statuses,
      responseHeaders: this.responseHeaders === undefined ? [] : rateLimitHeaders(this.responseHeaders, statuses, quotaFlags),
    };
  }

  private async decide(plans: readonly DescriptorPlan[]): Promise<DescriptorStatus[]> {
    const keys = [...new Set(plans.flatMap((plan) => (plan.kind === 'limited' ? plan.limits.map((l) => l.bucketKey) : [])))];
    if (keys.length === 0) return decideDescriptors(plans, new Map(), this.clock.nowMs()).statuses;
    return this.queue.run(keys, () => this.decideAndWrite(plans, keys));
  }

  /**
   * Load → decide → one conditional write. Groups the store refused (a concurrent writer got
   * there first) are decided again from the records it returned; the others are final.
   */
  private async decideAndWrite(plans: readonly DescriptorPlan[], keys: readonly string[]): Promise<DescriptorStatus[]> {
    const records = await this.loadRecords(keys);
    const statuses: DescriptorStatus[] = new Array<DescriptorStatus>(plans.length);
    let pending = plans.map((_, index) => index);
    for (let attempt = 1; ; attempt++) {
      const decision = decideDescriptors(pending.map((index) => plans[index] as DescriptorPlan), records, this.clock.nowMs());
      pending.forEach((planIndex, index) => {
        statuses[planIndex] = decision.statuses[index] as DescriptorStatus;
      });
      if (decision.writes.length === 0) return statuses;
      this.counters.storeWrites++;
      const { refused } = await this.store.compareAndSet(decision.writes);
      const nowMs = this.clock.nowMs();
      for (const write of decision.writes) {
        if (!refused.has(write.key)) this.cache.set(write.key, { state: write.state, version: write.expectedVersion + 1 }, nowMs);
      }
      if (refused.size === 0) return statuses;
      this.counters.writeConflicts++;
      for (const [key, current] of refused) {
        records.set(key, current);
        this.cache.set(key, current, nowMs);
      }
      pending = pending.filter((index) => touchesAny(plans[index] as DescriptorPlan, refused));
      if (attempt >= this.maxWriteAttempts) {
        await this.applyOnShard(plans, pending, statuses);
        return statuses;
      }
      await this.sleep(this.random() * CONFLICT_BACKOFF_MS * 2 ** attempt);
    }
  }

  /**
   * After the conditional writes kept losing (a hot bucket shared with other instances), the
   * store decides the rest itself, atomically, with the same math: the request still gets an
   * exact answer instead of an error.
   */
  private async applyOnShard(plans: readonly DescriptorPlan[], pending: readonly number[], statuses: DescriptorStatus[]): Promise<void> {
    const limited = pending.flatMap((index) => {
      const plan = plans[index] as DescriptorPlan;
      return plan.kind === 'limited' ? [{ index, plan }] : [];
    });
    const nowMs = this.clock.nowMs();
    const applied = await this.store.applyOnShard(
      limited.map(({ plan }) => ({ hits: plan.hits, limits: plan.limits.map(({ bucketKey, limit }) => ({ key: bucketKey, limit })) })),
      nowMs,
    );
    this.counters.shardApplied += limited.length;
    limited.forEach(({ index, plan }, position) => {
      const results = applied[position] ?? [];
      plan.limits.forEach(({ bucketKey }, limitIndex) => this.cache.set(bucketKey, results[limitIndex]?.record, nowMs));
      statuses[index] = limitedStatus(plan, plan.limits.map(({ limit }, limitIndex) => ({ limit, decision: results[limitIndex] as AppliedLimit })));
    });
  }

  /** Records for `keys`: fresh local copies where there are some, one store read for the rest. */
  private async loadRecords(keys: readonly string[]): Promise<Map<string, VersionedBucket | undefined>> {
    const nowMs = this.clock.nowMs();
    const records = new Map<string, VersionedBucket | undefined>();
    const missing: string[] = [];
    for (const key of keys) {
      const cached = this.cache.get(key, nowMs);
      if (cached.found) records.set(key, cached.record);
      else missing.push(key);
    }
    if (missing.length === 0) return records;
    this.counters.storeReads++;
    const loaded = await this.store.load(missing);
    missing.forEach((key, index) => {
      records.set(key, loaded[index]);
      this.cache.set(key, loaded[index], nowMs);
    });
    return records;
  }
}

function touchesAny(plan: DescriptorPlan, keys: ReadonlyMap<string, unknown>): boolean {
  return plan.kind === 'limited' && plan.limits.some((limit) => keys.has(limit.bucketKey));
}

/**
 * OVER_LIMIT iff a non-quota descriptor is over limit, or there are quota descriptors and all of
 * them are (envoyproxy/ratelimit's quota_mode). Shadow-mode statuses are already OK.
 */
function overallCode(statuses: readonly DescriptorStatus[], quotaFlags: readonly boolean[]): Code {
  let quotaCount = 0;
  let quotaOver = 0;
  for (const [index, status] of statuses.entries()) {
    const over = status.code === 'OVER_LIMIT';
    if (quotaFlags[index] === true) {
      quotaCount++;
      if (over) quotaOver++;
    } else if (over) {
      return 'OVER_LIMIT';
    }
  }
  return quotaCount > 0 && quotaOver === quotaCount ? 'OVER_LIMIT' : 'OK';
}
