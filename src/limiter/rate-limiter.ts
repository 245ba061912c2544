import {
  InvalidRequestError,
  NoConfigLoadedError,
  StoreContentionError,
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
import { decideDescriptors } from './decide-descriptors';
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
  /** Conditional-write attempts before giving up with StoreContentionError. */
  readonly maxWriteAttempts?: number;
}

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

  constructor(options: RateLimiterOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.rules = options.rules;
    this.responseHeaders = options.responseHeaders;
    this.shadowMode = options.shadowMode ?? false;
    this.maxWriteAttempts = options.maxWriteAttempts ?? 4;
  }

  async shouldRateLimit(query: RateLimitQuery): Promise<RateLimitOutcome> {
    if (query.domain === '') throw new InvalidRequestError('domain', 'rate limit domain must not be empty');
    if (query.descriptors.length === 0) {
      throw new InvalidRequestError('descriptors', 'rate limit descriptor list must not be empty');
    }
    const rules = this.rules();
    if (rules === undefined) throw new NoConfigLoadedError();
    const plans = planDescriptors(query, rules.domains.get(query.domain));
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
    const loaded = await this.store.load(keys);
    const records = new Map<string, VersionedBucket | undefined>(keys.map((key, index) => [key, loaded[index]]));
    const statuses: DescriptorStatus[] = new Array<DescriptorStatus>(plans.length);
    let pending = plans.map((_, index) => index);
    for (let attempt = 1; ; attempt++) {
      const decision = decideDescriptors(pending.map((index) => plans[index] as DescriptorPlan), records, this.clock.nowMs());
      pending.forEach((planIndex, index) => {
        statuses[planIndex] = decision.statuses[index] as DescriptorStatus;
      });
      if (decision.writes.length === 0) return statuses;
      const { refused } = await this.store.compareAndSet(decision.writes);
      if (refused.size === 0) return statuses;
      if (attempt >= this.maxWriteAttempts) throw new StoreContentionError([...refused.keys()], attempt);
      for (const [key, current] of refused) records.set(key, current);
      pending = pending.filter((index) => touchesAny(plans[index] as DescriptorPlan, refused));
    }
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
