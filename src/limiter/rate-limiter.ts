import {
  InvalidRequestError,
  MAX_UINT32,
  NoConfigLoadedError,
  type AppliedLimit,
  type BucketRateOutcome,
  type BucketRateRequest,
  type BucketStore,
  type CapacityOverride,
  type EngineObserver,
  type Limit,
  type NamedLimit,
  type RequestLimits,
  type Clock,
  type Code,
  type CommitOutcome,
  type DescriptorStatus,
  type RateLimitOutcome,
  type RateLimitQuery,
  type VersionedBucket,
} from '../core';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { RuleSet } from '../config/rule-set';
import { BucketQueue } from './bucket-queue';
import { apiBucketKey, bucketGroup } from '../bucket/bucket-key';
import { tokensAt } from '../bucket/token-bucket';
import { commitGroups, planGroup, type PlannedCommitGroup } from './commit-groups';
import { decideDescriptors, limitedStatus } from './decide-descriptors';
import { planDescriptors, type DescriptorPlan } from './descriptor-plan';
import { FallbackBuckets } from './fallback-buckets';
import { ExpiringCache } from './expiring-cache';
import { LocalRecords } from './local-records';
import { OverrideSet } from './override-set';
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
  /** Told of every call, verdict, conflict and fallback (metrics); absent = nobody listens. */
  readonly observer?: EngineObserver | undefined;
  /** Trace spans around calls and commits; off unless a trace exporter is set up (they cost even as no-ops). */
  readonly tracing?: boolean | undefined;
  /** Largest request decided; the defaults are the settings' defaults. */
  readonly limits?: RequestLimits | undefined;
}

const DEFAULT_LIMITS: RequestLimits = Object.freeze({ maxDescriptors: 64, maxEntriesPerDescriptor: 32, maxValueLength: 1024 });

const UNOBSERVED: EngineObserver = Object.freeze({ call() {}, descriptor() {}, versionConflict() {}, fallbackDecisions() {}, cacheDrift() {} });
const tracer = trace.getTracer('ringlimit');

/** The domain tag of /rate buckets in request-id answers; no configured domain can collide (it would need a NUL). */
const API_DOMAIN = '\0rate';

/** What GET /bucket/status shows. */
export interface BucketStatus {
  readonly bucketId: string;
  /** The bucket's id in the store. */
  readonly key: string;
  /** Which shard owns it ('memory' for the memory store). */
  readonly placement: string;
  readonly record: VersionedBucket | undefined;
  /** Absent when this instance has not seen the bucket used in the last hour. */
  readonly limit: NamedLimit | undefined;
  readonly tokensNow: number | undefined;
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
  private readonly answers: ExpiringCache<readonly DescriptorStatus[]>;
  /** The /rate definitions seen lately, so /bucket/status can tell a bucket's capacity and rate. */
  private readonly definitions = new ExpiringCache<DescriptorPlan>({ ttlMs: 3_600_000, maxEntries: 100_000 });
  private readonly overrides = new OverrideSet();
  private readonly observer: EngineObserver;
  private readonly tracing: boolean;
  private readonly limits: RequestLimits;
  /** Calls waiting for the commit in flight on their buckets, by bucket list. */
  private readonly waiting = new Map<string, WaitingBatch>();
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
    this.observer = options.observer ?? UNOBSERVED;
    this.tracing = options.tracing ?? false;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.answers = new ExpiringCache({ ttlMs: this.idempotencyTtlMs, maxEntries: 100_000 });
  }

  async shouldRateLimit(query: RateLimitQuery): Promise<RateLimitOutcome> {
    const rules = this.rules();
    const domainLabel = rules?.domains.has(query.domain) === true ? query.domain : 'unknown';
    return this.observed('ringlimit.should_rate_limit', domainLabel, async () => {
      if (query.domain === '') throw new InvalidRequestError('domain', 'rate limit domain must not be empty');
      if (query.descriptors.length === 0) {
        throw new InvalidRequestError('descriptors', 'rate limit descriptor list must not be empty');
      }
      this.checkSize(query);
      if (rules === undefined) throw new NoConfigLoadedError();
      const plans = this.overrides.apply(planDescriptors(query, rules.domains.get(query.domain)), this.clock.nowMs());
      const statuses = await this.decidePlans(query.domain, plans, query.requestId, query.timeBudgetMs);
      this.observeVerdicts(domainLabel, plans, statuses);
      const quotaFlags = plans.map((plan) => plan.kind === 'limited' && plan.quotaMode);
      const computed = overallCode(statuses, quotaFlags);
      return {
        overallCode: this.shadowMode ? 'OK' : computed,
        statuses,
        responseHeaders: this.responseHeaders === undefined ? [] : rateLimitHeaders(this.responseHeaders, statuses, quotaFlags),
      };
    }, (outcome) => (outcome.overallCode === 'OK' ? 'ok' : 'over_limit'));
  }

  /** Runs one call (inside a trace span when tracing), and counts its outcome (errors included) for `domain`. */
  private async observed<T>(spanName: string, domain: string, work: () => Promise<T>, outcomeOf: (result: T) => 'ok' | 'over_limit'): Promise<T> {
    if (!this.tracing) {
      try {
        const result = await work();
        this.observer.call(domain, outcomeOf(result));
        return result;
      } catch (error) {
        this.observer.call(domain, 'error');
        throw error;
      }
    }
    return tracer.startActiveSpan(spanName, { attributes: { 'ringlimit.domain': domain } }, async (span) => {
      try {
        const result = await work();
        const outcome = outcomeOf(result);
        span.setAttribute('ringlimit.outcome', outcome);
        this.observer.call(domain, outcome);
        return result;
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
        this.observer.call(domain, 'error');
        throw error;
      } finally {
        span.end();
      }
    });
  }

  private observeVerdicts(domain: string, plans: readonly DescriptorPlan[], statuses: readonly DescriptorStatus[]): void {
    plans.forEach((plan, index) => {
      if (plan.kind !== 'limited') return;
      const status = statuses[index];
      const verdict = status?.code === 'OVER_LIMIT' ? 'over_limit' : status?.shadowed === true ? 'shadow' : 'allowed';
      this.observer.descriptor(domain, verdict, plan.metricRule);
    });
  }

  /** POST /rate: one caller-defined token bucket, decided like any configured one (same store, ring, batching, idempotency). */
  async rateBucket(request: BucketRateRequest): Promise<BucketRateOutcome> {
    return this.observed('ringlimit.rate_bucket', 'rate_api', async () => {
      const plan = this.bucketPlan(request);
      const statuses = await this.decidePlans(API_DOMAIN, [plan], request.requestId, request.timeBudgetMs);
      this.observeVerdicts('rate_api', [plan], statuses);
      const [status] = statuses;
      if (status === undefined) throw new Error('no status for the bucket');
      const allowed = status.code === 'OK';
      const rate = plan.limits[0]?.limit.requestsPerUnit ?? request.refillPerSecond;
      const shortBy = Math.max(0, request.tokens - (status.available ?? 0));
      return {
        allowed,
        remaining: status.available ?? 0,
        // `available` is whole tokens, so this errs long by less than one token's refill time.
        retryAfterMs: allowed ? 0 : Math.ceil((shortBy / rate) * 1000),
        resetAfterMs: status.resetAfterMs ?? 0,
      };
    }, (outcome) => (outcome.allowed ? 'ok' : 'over_limit'));
  }

  /** A bucket as stored now, with the limit it is decided by (its /rate definition seen here, overrides applied). */
  async bucketStatus(bucketId: string): Promise<BucketStatus> {
    const key = apiBucketKey(bucketId);
    const [record] = await this.store.load([key]);
    const seen = this.definitions.get(key, this.clock.nowMs());
    const planned = seen.value === undefined ? undefined : this.overrides.apply([seen.value], this.clock.nowMs())[0];
    const limit = planned?.kind === 'limited' ? planned.limits[0]?.limit : undefined;
    const nowMs = this.clock.nowMs();
    return {
      bucketId,
      key,
      placement: this.store.placement(key),
      record,
      limit,
      tokensNow: limit === undefined ? undefined : tokensAt(record?.state, limit, nowMs),
    };
  }

  /** Reads buckets into the local copy, so their first requests can be denied without a round trip. Returns how many exist. */
  async prewarm(keys: readonly string[]): Promise<number> {
    const records = await this.store.load(keys);
    const atMs = this.clock.nowMs();
    keys.forEach((key, index) => this.records.loaded(key, records[index], atMs));
    return records.filter((record) => record !== undefined).length;
  }

  /** Forgets buckets everywhere: the next use finds them full. Other instances' local copies catch up within BUCKET_CACHE_TTL_MS. */
  async resetBuckets(keys: readonly string[]): Promise<void> {
    await this.store.remove(keys);
    for (const key of keys) this.records.forget(key);
  }

  /** Replaces the operators' overrides in force (from the override store). */
  setOverrides(overrides: readonly CapacityOverride[]): void {
    this.overrides.replace(overrides);
  }

  /** Refuses a request larger than the limits, naming the first field over, before any bucket is touched. */
  private checkSize(query: RateLimitQuery): void {
    const { maxDescriptors, maxEntriesPerDescriptor, maxValueLength } = this.limits;
    if (query.descriptors.length > maxDescriptors) throw new InvalidRequestError('descriptors', `at most ${maxDescriptors} descriptors per request (got ${query.descriptors.length})`);
    if (query.domain.length > maxValueLength) throw new InvalidRequestError('domain', `must be at most ${maxValueLength} characters`);
    query.descriptors.forEach((descriptor, index) => {
      if (descriptor.entries.length > maxEntriesPerDescriptor) {
        throw new InvalidRequestError(`descriptors[${index}].entries`, `at most ${maxEntriesPerDescriptor} entries per descriptor (got ${descriptor.entries.length})`);
      }
      descriptor.entries.forEach((entry, entryIndex) => {
        if (entry.key.length > maxValueLength) throw new InvalidRequestError(`descriptors[${index}].entries[${entryIndex}].key`, `must be at most ${maxValueLength} characters`);
        if (entry.value.length > maxValueLength) throw new InvalidRequestError(`descriptors[${index}].entries[${entryIndex}].value`, `must be at most ${maxValueLength} characters`);
      });
    });
  }

  private bucketPlan(request: BucketRateRequest): DescriptorPlan & { kind: 'limited' } {
    if (request.bucketId === '') throw new InvalidRequestError('bucket_id', 'must not be empty');
    if (request.bucketId.length > this.limits.maxValueLength) throw new InvalidRequestError('bucket_id', `must be at most ${this.limits.maxValueLength} characters`);
    if (!Number.isSafeInteger(request.capacity) || request.capacity < 1 || request.capacity > MAX_UINT32) {
      throw new InvalidRequestError('capacity', `must be a whole number from 1 to ${MAX_UINT32}`);
    }
    if (!Number.isFinite(request.refillPerSecond) || request.refillPerSecond <= 0 || request.refillPerSecond > MAX_UINT32) {
      throw new InvalidRequestError('refill_rate', 'must be a number of tokens per second above 0');
    }
    const bucketKey = apiBucketKey(request.bucketId);
    const limit: NamedLimit = { requestsPerUnit: request.refillPerSecond, unit: 'second', capacity: request.capacity, algorithm: 'token_bucket', name: '' };
    const plan: DescriptorPlan & { kind: 'limited' } = { kind: 'limited', limits: [{ limit, bucketKey }], hits: request.tokens, shadowMode: false, quotaMode: false };
    this.definitions.set(bucketKey, plan, this.clock.nowMs());
    const withOverrides = this.overrides.apply([plan], this.clock.nowMs())[0] as DescriptorPlan & { kind: 'limited' };
    // An override may have changed the capacity: more than it can never be granted.
    const capacity = withOverrides.limits[0]?.limit.capacity ?? request.capacity;
    if (!Number.isSafeInteger(request.tokens) || request.tokens < 1 || request.tokens > capacity) {
      throw new InvalidRequestError('tokens_requested', `must be a whole number from 1 to the capacity (${capacity})`);
    }
    return withOverrides;
  }

  /** Decides planned descriptors once per request id: a retry with the same id and the same ask gets the first statuses. */
  private async decidePlans(domain: string, plans: DescriptorPlan[], requestIdGiven: string | undefined, timeBudgetMs: number | undefined): Promise<DescriptorStatus[]> {
    if (requestIdGiven !== undefined && requestIdGiven.length > MAX_REQUEST_ID_LENGTH) {
      throw new InvalidRequestError('x-request-id', `must be at most ${MAX_REQUEST_ID_LENGTH} characters`);
    }
    this.counters.decisions++;
    const requestId = this.idempotencyTtlMs > 0 && requestIdGiven !== undefined && requestIdGiven !== '' ? requestIdGiven : undefined;
    const answerKey = requestId === undefined ? undefined : `${domain}\0${requestId}\0${fingerprint(plans)}`;
    if (answerKey !== undefined) {
      const answered = this.answers.get(answerKey, this.clock.nowMs());
      if (answered.found && answered.value !== undefined) return [...answered.value];
    }
    const answerBy = timeBudgetMs === undefined ? undefined : performance.now() + storeBudgetMs(timeBudgetMs);
    const statuses = await this.decide(plans, requestId, answerBy);
    if (answerKey !== undefined) this.answers.set(answerKey, statuses, this.clock.nowMs());
    return statuses;
  }

  /** `answerBy`: performance.now() time by which the store must have answered (a fallback decides after it). */
  private async decide(plans: readonly DescriptorPlan[], requestId: string | undefined, answerBy: number | undefined): Promise<DescriptorStatus[]> {
    const keys = bucketKeysOf(plans);
    if (keys.length === 0) return decideDescriptors(plans, new Map(), this.clock.nowMs()).statuses;
    const { store } = this;
    if (store.commitNow !== undefined) {
      // An in-process store decides synchronously: nothing can run between our read and write.
      const prepared = this.prepareCommit(plans, keys, requestId);
      return prepared.groups === undefined ? prepared.statuses : this.settle(plans, prepared, store.commitNow(prepared.groups, prepared.nowMs));
    }
    // Calls for buckets with a commit in flight wait for it, then go together in the next one.
    if (requestId === undefined && this.queue.busy(keys)) return this.joinBatch(keys, plans, answerBy);
    return this.queue.run(keys, () => this.commitPlans(plans, keys, requestId, answerBy));
  }

  /** Adds a call to the batch waiting on the same buckets (starting one if none waits); resolves with the call's own statuses. */
  private async joinBatch(keys: readonly string[], plans: readonly DescriptorPlan[], answerBy: number | undefined): Promise<DescriptorStatus[]> {
    const signature = keys.join('\n');
    let batch = this.waiting.get(signature);
    if (batch === undefined) {
      const started: WaitingBatch = { members: [], answerBy, statuses: Promise.resolve([]) };
      started.statuses = this.queue.run(keys, () => {
        // Later calls start the next batch; this one is complete from here on.
        this.waiting.delete(signature);
        return this.commitPlans(started.members.flat(), keys, undefined, started.answerBy);
      });
      this.waiting.set(signature, started);
      batch = started;
    }
    const offset = batch.members.reduce((sum, member) => sum + member.length, 0);
    batch.members.push(plans);
    if (answerBy !== undefined) batch.answerBy = Math.min(batch.answerBy ?? answerBy, answerBy);
    return (await batch.statuses).slice(offset, offset + plans.length);
  }

  /** One commit for `plans` (one call's, or a batch's in order), within the store's time budget. */
  private async commitPlans(plans: readonly DescriptorPlan[], keys: readonly string[], requestId: string | undefined, answerBy: number | undefined): Promise<DescriptorStatus[]> {
    const prepared = this.prepareCommit(plans, keys, requestId);
    if (prepared.groups === undefined) return prepared.statuses;
    const commitOptions = answerBy === undefined ? {} : { timeoutMs: Math.max(0, answerBy - performance.now()) };
    const { groups, nowMs } = prepared;
    const outcomes = this.tracing
      ? await tracer.startActiveSpan('ringlimit.store.commit', { attributes: { 'ringlimit.groups': groups.length } }, (span) =>
          this.store.commit(groups, nowMs, commitOptions).finally(() => span.end()),
        )
      : await this.store.commit(groups, nowMs, commitOptions);
    return this.settle(plans, prepared, outcomes);
  }

  /**
   * Groups whose records are all in the local copy are decided here: an exact denial needs no
   * round trip, and an admission becomes a conditional write where this instance has lately been
   * the records' only writer. Every other group is sent for the store to decide. Either way, one
   * commit: a group whose version moved meanwhile is decided by the store in that same round
   * trip, and its verdicts replace ours (settle).
   */
  private prepareCommit(plans: readonly DescriptorPlan[], keys: readonly string[], requestId: string | undefined): PreparedCommit {
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
    const decidedHere = storeDecides.size === 0 ? plans : plans.map((plan) => (plan.kind === 'limited' && storeDecides.has(planGroup(plan)) ? NOT_DECIDED_HERE : plan));
    const local = decideDescriptors(decidedHere, records, nowMs);
    for (const write of local.writes) {
      if (shared.has(write.key)) storeDecides.add(bucketGroup(write.key));
    }
    const writes = storeDecides.size === 0 ? local.writes : local.writes.filter((write) => !storeDecides.has(bucketGroup(write.key)));
    const { statuses } = local;
    if (writes.length === 0 && storeDecides.size === 0) return { statuses, nowMs, groups: undefined };
    const groups = commitGroups(plans, writes, {
      storeDecides,
      debitsOf: (group) => this.fallback.debitsFor(group),
      idempotency: requestId === undefined ? undefined : { requestId, ttlMs: this.idempotencyTtlMs },
    });
    return { statuses, nowMs, groups };
  }

  /** Takes the store's outcomes: our writes landed, or its verdicts replace ours, or a fallback decides. */
  private settle(plans: readonly DescriptorPlan[], prepared: PreparedCommit, outcomes: readonly CommitOutcome[]): DescriptorStatus[] {
    const { statuses, nowMs, groups = [] } = prepared;
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
        if (conflicted) {
          this.counters.versionConflicts++;
          this.observer.versionConflict();
        }
        if (group.debits !== undefined) this.fallback.settle(group.id);
        this.applyVerdicts(plans, group, outcome.results, statuses);
        if (this.records.enabled) this.rememberStoreRecords(group, outcome.results, conflicted, doneAtMs);
        return;
      }
      this.counters.fallbackDecisions += group.requests.length;
      this.observer.fallbackDecisions(group.requests.length);
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
      request.limits.forEach(({ key, limit }, limitIndex) => {
        const applied = results[requestIndex]?.[limitIndex];
        const record = applied?.record;
        const earlier = seen.get(key);
        if (earlier !== undefined) {
          seen.set(key, { ...earlier, record });
          return;
        }
        seen.set(key, { firstSeen: record, ownSteps: (debited.get(key) ?? 0) + 1, record, conflicted });
        this.observeDrift(key, limit, record, applied?.allowed === true ? request.hits : 0, atMs);
      });
    });
    for (const [key, update] of seen) this.records.decidedByStore(key, update, atMs);
  }

  /** How far our copy of a token bucket was from the record the store decided from (our own hits taken out). */
  private observeDrift(key: string, limit: Limit, record: VersionedBucket | undefined, ownHits: number, atMs: number): void {
    if (limit.algorithm !== 'token_bucket') return;
    const copy = this.records.lookup(key, atMs);
    if (!copy.found) return;
    const expected = tokensAt(copy.record?.state, limit, atMs);
    const actual = tokensAt(record?.state, limit, atMs) + ownHits;
    this.observer.cacheDrift(Math.abs(expected - actual) / limit.capacity);
  }

  /** Whether fallback buckets admitted anything not yet written back to its shard. */
  get owesFallbackDebts(): boolean {
    return this.fallback.owedGroups().length > 0;
  }

  /**
   * Writes back what fallback buckets admitted while their shard was down, for groups no
   * request has touched since. Safe to call often: groups whose shard is still down stay owed.
   * `final` (at shutdown) also tries shards that failed within the last second.
   */
  async writeBackFallbackDebts(final = false): Promise<void> {
    for (const id of this.fallback.owedGroups()) {
      const debits = this.fallback.debitsFor(id);
      const keys = debits.flatMap(({ limits }) => limits.map(({ key }) => key));
      await this.queue.run(keys, async () => {
        const current = this.fallback.debitsFor(id);
        if (current.length === 0) return;
        const [outcome] = await this.store.commit([{ writes: [], requests: [], debits: current }], this.clock.nowMs(), final ? { evenIfDown: true } : {});
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

/** Every bucket the plans use, each once. */
function bucketKeysOf(plans: readonly DescriptorPlan[]): string[] {
  const keys: string[] = [];
  for (const plan of plans) {
    if (plan.kind !== 'limited') continue;
    for (const { bucketKey } of plan.limits) if (!keys.includes(bucketKey)) keys.push(bucketKey);
  }
  return keys;
}

/** Calls that wait for the same buckets and will be decided together in one commit. */
interface WaitingBatch {
  /** Each call's plans, in arrival order. */
  readonly members: (readonly DescriptorPlan[])[];
  /** The earliest deadline among them. */
  answerBy: number | undefined;
  statuses: Promise<DescriptorStatus[]>;
}

/** What prepareCommit decided, and the groups (if any) the store must commit or decide. */
interface PreparedCommit {
  readonly statuses: DescriptorStatus[];
  readonly nowMs: number;
  readonly groups: PlannedCommitGroup[] | undefined;
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
