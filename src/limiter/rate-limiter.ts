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
import { bucketGroup } from '../bucket/bucket-key';
import { commitGroups, planGroup, type PlannedCommitGroup } from './commit-groups';
import { decideDescriptors, limitedStatus } from './decide-descriptors';
import { planDescriptors, type DescriptorPlan } from './descriptor-plan';
import { FallbackBuckets } from './fallback-buckets';
import { ExpiringCache } from './expiring-cache';
import { LocalRecords } from './local-records';
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
  /** Local copy of records (ms); worth it only for a remote store. 0 = always read the store. */
  readonly recordCacheTtlMs?: number;
  /** How long the answer to a request id is kept for its retries (ms); 0 ignores request ids. */
  readonly idempotencyTtlMs?: number;
}

/** Longest request id accepted; longer ones are refused, not truncated. */
const MAX_REQUEST_ID_LENGTH = 256;

/** What the engine did, for logs and metrics. */
export interface EngineCounters {
  decisions: number;
  /** Bucket groups sent to the store (one round trip per call, whatever the count). */
  groupsCommitted: number;
  /** Conditional writes whose version had moved, so the store decided them itself. */
  versionConflicts: number;
  /** Descriptors decided by a local fallback bucket because their shard did not answer. */
  fallbackDecisions: number;
}

/**
 * The engine: query → matched limits → bucket decisions → one commit per call.
 * Knows nothing of gRPC, HTTP or YAML; errors are typed for the edge to classify.
 */
export class RateLimiter {
  private readonly store: BucketStore;
  private readonly clock: Clock;
  private readonly rules: () => RuleSet | undefined;
  private readonly responseHeaders: ResponseHeaderNames | undefined;
  private readonly shadowMode: boolean;
  private readonly queue = new BucketQueue();
  private readonly records: LocalRecords;
  private readonly answers: ExpiringCache<RateLimitOutcome>;
  private readonly idempotencyTtlMs: number;
  private readonly fallback = new FallbackBuckets(100_000);
  readonly counters: EngineCounters = { decisions: 0, groupsCommitted: 0, versionConflicts: 0, fallbackDecisions: 0 };

  constructor(options: RateLimiterOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.rules = options.rules;
    this.responseHeaders = options.responseHeaders;
    this.shadowMode = options.shadowMode ?? false;
    this.records = new LocalRecords({ ttlMs: options.recordCacheTtlMs ?? 0, maxEntries: 100_000 });
    this.idempotencyTtlMs = options.idempotencyTtlMs ?? 0;
    this.answers = new ExpiringCache({ ttlMs: this.idempotencyTtlMs, maxEntries: 100_000 });
  }

  async shouldRateLimit(query: RateLimitQuery): Promise<RateLimitOutcome> {
    if (query.domain === '') throw new InvalidRequestError('domain', 'rate limit domain must not be empty');
    if (query.descriptors.length === 0) {
      throw new InvalidRequestError('descriptors', 'rate limit descriptor list must not be empty');
    }
    if (query.requestId !== undefined && query.requestId.length > MAX_REQUEST_ID_LENGTH) {
      throw new InvalidRequestError('x-request-id', `must be at most ${MAX_REQUEST_ID_LENGTH} characters`);
    }
    const rules = this.rules();
    if (rules === undefined) throw new NoConfigLoadedError();
    const plans = planDescriptors(query, rules.domains.get(query.domain));
    this.counters.decisions++;
    const requestId = this.idempotencyTtlMs > 0 && query.requestId !== undefined && query.requestId !== '' ? query.requestId : undefined;
    const answerKey = requestId === undefined ? undefined : `${query.domain}\0${requestId}\0${fingerprint(plans)}`;
    if (answerKey !== undefined) {
      const answered = this.answers.get(answerKey, this.clock.nowMs());
      if (answered.found && answered.value !== undefined) return answered.value;
    }
    const answerBy = query.timeBudgetMs === undefined ? undefined : performance.now() + storeBudgetMs(query.timeBudgetMs);
    const statuses = await this.decide(plans, requestId, answerBy);
    const quotaFlags = plans.map((plan) => plan.kind === 'limited' && plan.quotaMode);
    const computed = overallCode(statuses, quotaFlags);
    const outcome: RateLimitOutcome = {
      overallCode: this.shadowMode ? 'OK' : computed,
      statuses,
      responseHeaders: this.responseHeaders === undefined ? [] : rateLimitHeaders(this.responseHeaders, statuses, quotaFlags),
    };
    if (answerKey !== undefined) this.answers.set(answerKey, outcome, this.clock.nowMs());
    return outcome;
  }

  /** `answerBy`: performance.now() time by which the store must have answered (a fallback decides after it). */
  private async decide(plans: readonly DescriptorPlan[], requestId: string | undefined, answerBy: number | undefined): Promise<DescriptorStatus[]> {
    const keys = [...new Set(plans.flatMap((plan) => (plan.kind === 'limited' ? plan.limits.map((l) => l.bucketKey) : [])))];
    if (keys.length === 0) return decideDescriptors(plans, new Map(), this.clock.nowMs()).statuses;
    return this.queue.run(keys, () => this.decideAndCommit(plans, keys, requestId, answerBy));
  }

  /**
   * Groups whose records are all in the local copy are decided here: an exact denial needs no
   * round trip, and an admission becomes a conditional write where this instance has lately been
   * the records' only writer. Every other group is sent for the store to decide. Either way, one
   * commit: a group whose version moved meanwhile is decided by the store in that same round
   * trip, and its verdicts replace ours.
   */
  private async decideAndCommit(
    plans: readonly DescriptorPlan[],
    keys: readonly string[],
    requestId: string | undefined,
    answerBy: number | undefined,
  ): Promise<DescriptorStatus[]> {
    const nowMs = this.clock.nowMs();
    const records = new Map<string, VersionedBucket | undefined>();
    const uncached = new Set<string>();
    const shared = new Set<string>();
    for (const key of keys) {
      const local = this.records.lookup(key, nowMs);
      if (!local.found) uncached.add(key);
      else records.set(key, local.record);
      if (!local.soleWriter) shared.add(key);
    }
    const storeDecides = new Set<string>();
    for (const plan of plans) {
      if (plan.kind !== 'limited') continue;
      const group = planGroup(plan);
      // Debts from a fallback go first, and a request id's answer is kept by the store: both
      // need the store to decide the group (a retry may reach another instance).
      const needsStore = requestId !== undefined || plan.limits.some(({ bucketKey }) => uncached.has(bucketKey));
      if (needsStore || this.fallback.owes(group)) storeDecides.add(group);
    }
    const decidedHere = plans.map((plan) => (plan.kind === 'limited' && storeDecides.has(planGroup(plan)) ? NOT_DECIDED_HERE : plan));
    const local = decideDescriptors(decidedHere, records, nowMs);
    for (const write of local.writes) {
      if (shared.has(write.key)) storeDecides.add(bucketGroup(write.key));
    }
    const writes = local.writes.filter((write) => !storeDecides.has(bucketGroup(write.key)));
    const { statuses } = local;
    if (writes.length === 0 && storeDecides.size === 0) return statuses;
    const groups = commitGroups(plans, writes, {
      storeDecides,
      debitsOf: (group) => this.fallback.debitsFor(group),
      idempotency: requestId === undefined ? undefined : { requestId, ttlMs: this.idempotencyTtlMs },
    });
    const outcomes = await this.store.commit(groups, nowMs, answerBy === undefined ? {} : { timeoutMs: Math.max(0, answerBy - performance.now()) });
    const doneAtMs = this.clock.nowMs();
    this.counters.groupsCommitted += groups.length;
    groups.forEach((group, groupIndex) => {
      const outcome = outcomes[groupIndex];
      if (outcome?.kind === 'written') {
        for (const write of group.writes) this.records.written(write.key, { state: write.state, version: write.expectedVersion + 1 }, doneAtMs);
        return;
      }
      if (outcome?.kind === 'decided') {
        const conflicted = group.writes.length > 0 && group.debits === undefined;
        if (conflicted) this.counters.versionConflicts++;
        if (group.debits !== undefined) this.fallback.settle(group.id);
        this.applyVerdicts(plans, group, outcome.results, statuses);
        this.rememberStoreRecords(group, outcome.results, conflicted, doneAtMs);
        return;
      }
      this.counters.fallbackDecisions += group.requests.length;
      this.applyVerdicts(plans, group, this.fallback.decide(group.requests, nowMs), statuses);
    });
    return statuses;
  }

  /** Replaces the statuses of a group's descriptors with verdicts reached elsewhere. */
  private applyVerdicts(plans: readonly DescriptorPlan[], group: PlannedCommitGroup, results: readonly (readonly AppliedLimit[])[], statuses: DescriptorStatus[]): void {
    group.planIndexes.forEach((planIndex, requestIndex) => {
      const plan = plans[planIndex] as DescriptorPlan & { kind: 'limited' };
      const verdicts = results[requestIndex];
      if (verdicts?.length !== plan.limits.length) throw new Error(`no verdict for descriptor ${planIndex}`);
      statuses[planIndex] = limitedStatus(
        plan,
        plan.limits.map(({ limit }, limitIndex) => ({ limit, decision: verdicts[limitIndex] as AppliedLimit })),
      );
    });
  }

  /** Keeps the records a store decision left, and whether anyone but us had changed them since our copy. */
  private rememberStoreRecords(group: PlannedCommitGroup, results: readonly (readonly AppliedLimit[])[], conflicted: boolean, atMs: number): void {
    const debited = new Map<string, number>();
    for (const debit of group.debits ?? []) {
      for (const { key } of debit.limits) debited.set(key, (debited.get(key) ?? 0) + 1);
    }
    const seen = new Map<string, { firstSeen: VersionedBucket | undefined; ownSteps: number; record: VersionedBucket | undefined; conflicted: boolean }>();
    group.requests.forEach((request, requestIndex) => {
      request.limits.forEach(({ key }, limitIndex) => {
        const record = results[requestIndex]?.[limitIndex]?.record;
        const earlier = seen.get(key);
        seen.set(key, earlier === undefined ? { firstSeen: record, ownSteps: (debited.get(key) ?? 0) + 1, record, conflicted } : { ...earlier, record });
      });
    });
    for (const [key, update] of seen) this.records.decidedByStore(key, update, atMs);
  }

  /**
   * Writes back what fallback buckets admitted while their shard was down, for groups no
   * request has touched since. Safe to call often: groups whose shard is still down stay owed.
   */
  async writeBackFallbackDebts(): Promise<void> {
    for (const id of this.fallback.owedGroups()) {
      const debits = this.fallback.debitsFor(id);
      const keys = debits.flatMap(({ limits }) => limits.map(({ key }) => key));
      await this.queue.run(keys, async () => {
        const current = this.fallback.debitsFor(id);
        if (current.length === 0) return;
        const [outcome] = await this.store.commit([{ writes: [], requests: [], debits: current }], this.clock.nowMs());
        if (outcome?.kind === 'decided') {
          this.fallback.settle(id);
          for (const key of keys) this.records.forget(key);
        }
      });
    }
  }
}

/** What a request asked, so a reused request id with other descriptors is not answered from the first. */
function fingerprint(plans: readonly DescriptorPlan[]): string {
  return plans.map((plan) => (plan.kind === 'limited' ? `${plan.hits}:${plan.limits.map((limit) => limit.bucketKey).join(',')}` : plan.kind)).join(';');
}

/**
 * The part of a caller's time budget the store may use: the rest is kept to decide by fallback
 * and send the answer, so a shard that does not answer still leaves time to answer the caller.
 */
function storeBudgetMs(timeBudgetMs: number): number {
  return Math.max(0, Math.min(timeBudgetMs - 5, timeBudgetMs / 2));
}

/** Stands in for a descriptor the store will decide, so local decisions keep request order. */
const NOT_DECIDED_HERE: DescriptorPlan = Object.freeze({ kind: 'no_limit' });

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
