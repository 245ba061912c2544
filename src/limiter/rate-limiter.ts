import {
  DeadlinePassedError,
  InvalidRequestError,
  MAX_UINT32,
  NoConfigLoadedError,
  OverloadedError,
  type BucketRateOutcome,
  type BucketRateRequest,
  type BucketStore,
  type CapacityOverride,
  type EngineObserver,
  type NamedLimit,
  type RequestLimits,
  type Clock,
  type Code,
  type DescriptorStatus,
  type RateLimitOutcome,
  type RateLimitQuery,
  type VersionedBucket,
} from '../core';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { RuleSet } from '../config/rule-set';
import { BucketQueue } from './bucket-queue';
import { apiBucketKey } from '../bucket/bucket-key';
import { tokensAt } from '../bucket/token-bucket';
import { decideDescriptors } from './decide-descriptors';
import { planDescriptors, type DescriptorPlan } from './descriptor-plan';
import { FallbackBuckets } from './fallback-buckets';
import { ExpiringCache } from './expiring-cache';
import { LocalRecords, recordLeftBy } from './local-records';
import { CommitPlanner, type EngineCounters, type InProcessStore } from './commit-planner';
import { OverrideSet } from './override-set';
import { rateLimitHeaders, type ResponseHeaderNames } from './response-headers';

export type { EngineCounters } from './commit-planner';

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
  /** Calls decided at once at most; more are refused at once (OverloadedError). 0 = no bound. */
  readonly maxCallsInFlight?: number | undefined;
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

/** Real ms a periodic write-back of fallback debts may take; an unfinished one is tried again a second later. */
const WRITE_BACK_BUDGET_MS = 5;

/** Longest request id accepted; longer ones are refused, not truncated. */
const MAX_REQUEST_ID_LENGTH = 256;


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
  private readonly maxCallsInFlight: number;
  private callsInFlight = 0;
  /** Calls waiting for the commit in flight on their buckets, by bucket list. */
  private readonly waiting = new Map<string, WaitingBatch>();
  private readonly idempotencyTtlMs: number;
  private readonly fallback = new FallbackBuckets(100_000);
  readonly counters: EngineCounters = { decisions: 0, groupsCommitted: 0, versionConflicts: 0, fallbackDecisions: 0 };
  private readonly planner: CommitPlanner;

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
    this.maxCallsInFlight = options.maxCallsInFlight ?? 0;
    this.answers = new ExpiringCache({ ttlMs: this.idempotencyTtlMs, maxEntries: 100_000 });
    this.planner = new CommitPlanner({
      clock: this.clock,
      records: this.records,
      fallback: this.fallback,
      counters: this.counters,
      observer: this.observer,
      idempotencyTtlMs: this.idempotencyTtlMs,
    });
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
    // Past the bound, calls are only queueing: refusing them at once keeps the rest in time.
    if (this.maxCallsInFlight > 0 && this.callsInFlight >= this.maxCallsInFlight) {
      this.observer.call(domain, 'error');
      throw new OverloadedError(this.callsInFlight);
    }
    this.callsInFlight++;
    try {
      return await this.traced(spanName, domain, work, outcomeOf);
    } finally {
      this.callsInFlight--;
    }
  }

  private async traced<T>(spanName: string, domain: string, work: () => Promise<T>, outcomeOf: (result: T) => 'ok' | 'over_limit'): Promise<T> {
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
    const startedAt = performance.now();
    const deadline = timeBudgetMs === undefined ? undefined : { startedAt, answerBy: startedAt + storeBudgetMs(timeBudgetMs), lateAt: startedAt + timeBudgetMs - ANSWER_MARGIN_MS };
    const statuses = await this.decide(plans, requestId, deadline);
    if (answerKey !== undefined) this.answers.set(answerKey, statuses, this.clock.nowMs());
    return statuses;
  }

  /** `deadline`: when the store must have answered (a fallback decides after it), and when an answer is too late to send. */
  private async decide(plans: readonly DescriptorPlan[], requestId: string | undefined, deadline: CallDeadline | undefined): Promise<DescriptorStatus[]> {
    const { store } = this;
    // An in-process store decides synchronously: nothing can run between our read and write. (A
    // local copy in front of one is what tests use to stand for a remote store: it takes the full path.)
    if (store.commitNow !== undefined && requestId === undefined && !this.records.enabled) return this.planner.decideNow(plans, store as InProcessStore);
    const keys = bucketKeysOf(plans);
    if (keys.length === 0) return decideDescriptors(plans, new Map(), this.clock.nowMs()).statuses;
    if (store.commitNow !== undefined) {
      const prepared = this.planner.prepare(plans, keys, requestId);
      return prepared.groups === undefined ? prepared.statuses : this.planner.settle(plans, prepared, store.commitNow(prepared.groups, prepared.nowMs));
    }
    // Calls for buckets with a commit in flight wait for it, then go together in the next one.
    if (requestId === undefined && this.queue.busy(keys)) return this.joinBatch(keys, plans, deadline);
    return this.queue.run(keys, () => {
      throwIfLate(deadline);
      return this.commitPlans(plans, keys, requestId, deadline?.answerBy);
    });
  }

  /**
   * Adds a call to the batch waiting on the same buckets (starting one if none waits); resolves
   * with the call's own statuses. A call that the local copy denies, counting the admissions
   * queued and in flight ahead of it, is answered at once instead (DESIGN.md: deny locally while
   * a bucket is known to be empty); one that would be admitted joins, and its admissions count
   * for the calls after it.
   */
  private joinBatch(keys: readonly string[], plans: readonly DescriptorPlan[], deadline: CallDeadline | undefined): Promise<DescriptorStatus[]> | DescriptorStatus[] {
    const signature = keys.join('\n');
    let batch = this.waiting.get(signature);
    const ahead = this.planner.prepare(plans, keys, undefined, { queued: batch?.ahead });
    if (ahead.groups === undefined) return ahead.statuses;
    if (batch === undefined) {
      const started: WaitingBatch = { members: [], answerBy: undefined, ahead: new Map() };
      void this.queue.run(keys, () => {
        // Later calls start the next batch; this one is complete from here on.
        if (this.waiting.get(signature) === started) this.waiting.delete(signature);
        return this.commitBatch(started, keys);
      });
      this.waiting.set(signature, started);
      batch = started;
    }
    const joined = batch;
    for (const { writes } of ahead.groups) {
      for (const write of writes) joined.ahead.set(write.key, recordLeftBy(write));
    }
    if (deadline !== undefined) joined.answerBy = Math.min(joined.answerBy ?? deadline.answerBy, deadline.answerBy);
    return new Promise((resolve, reject) => joined.members.push({ plans, deadline, resolve, reject }));
  }

  /** One commit for the members of a batch still in time; each gets its own statuses. */
  private async commitBatch(batch: WaitingBatch, keys: readonly string[]): Promise<void> {
    const inTime = batch.members.filter((member) => {
      const late = lateness(member.deadline);
      if (late !== undefined) member.reject(late);
      return late === undefined;
    });
    if (inTime.length === 0) return;
    try {
      const statuses = await this.commitPlans(inTime.flatMap((member) => member.plans), keys, undefined, batch.answerBy);
      let offset = 0;
      for (const member of inTime) {
        member.resolve(statuses.slice(offset, offset + member.plans.length));
        offset += member.plans.length;
      }
    } catch (error) {
      for (const member of inTime) member.reject(error);
    }
  }

  /** One commit for `plans` (one call's, or a batch's in order), within the store's time budget. */
  private async commitPlans(plans: readonly DescriptorPlan[], keys: readonly string[], requestId: string | undefined, answerBy: number | undefined): Promise<DescriptorStatus[]> {
    const prepared = this.planner.prepare(plans, keys, requestId);
    if (prepared.groups === undefined) return prepared.statuses;
    const commitOptions = answerBy === undefined ? {} : { timeoutMs: Math.max(0, answerBy - performance.now()) };
    const { groups, nowMs } = prepared;
    const writes = groups.flatMap((group) => group.writes);
    for (const write of writes) this.records.sending(write);
    try {
      const outcomes = this.tracing
        ? await tracer.startActiveSpan('ringlimit.store.commit', { attributes: { 'ringlimit.groups': groups.length } }, (span) =>
            this.store.commit(groups, nowMs, commitOptions).finally(() => span.end()),
          )
        : await this.store.commit(groups, nowMs, commitOptions);
      return this.planner.settle(plans, prepared, outcomes);
    } finally {
      for (const write of writes) this.records.sent(write.key);
    }
  }

  /** Whether fallback buckets admitted anything not yet written back to its shard. */
  get owesFallbackDebts(): boolean {
    return this.fallback.owedGroups().length > 0;
  }

  /**
   * Writes back what fallback buckets admitted while their shard was down, for groups no
   * request has touched since. Safe to call often: groups whose shard is still down stay owed.
   * Until a write-back fails, it also tries shards that failed within the last second: each
   * pass is the first to learn that a shard is back. (Skipped as down, a shard that had just
   * returned stayed unwritten for seconds: the commands lost in an outage time out after it and
   * keep its breaker open.) `final` (at shutdown) tries them all.
   */
  async writeBackFallbackDebts(final = false): Promise<void> {
    let failedThisPass = false;
    for (const id of this.fallback.owedGroups()) {
      const debits = this.fallback.debitsFor(id);
      const keys = debits.flatMap(({ limits }) => limits.map(({ key }) => key));
      await this.queue.run(keys, async () => {
        const current = this.fallback.debitsFor(id);
        if (current.length === 0) return;
        // Calls for these buckets queue behind the write-back: a short budget keeps their own in
        // time while a shard is flaky. At shutdown nobody waits, so the store's default applies.
        const options = final ? { evenIfDown: true } : { timeoutMs: WRITE_BACK_BUDGET_MS, evenIfDown: !failedThisPass };
        const [outcome] = await this.store.commit([{ writes: [], requests: [], debits: current }], this.clock.nowMs(), options);
        if (outcome?.kind === 'unavailable') failedThisPass = true;
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
 * 40%: with half, answers from the fallback came as late as 19 ms of Envoy's 20 on a busy
 * two-core machine (test/integration/faults.test.ts); a same-region shard answers in 1-2 ms.
 */
function storeBudgetMs(timeBudgetMs: number): number {
  return Math.max(0, Math.min(timeBudgetMs - 5, timeBudgetMs * 0.4));
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
  /** Each call, in arrival order. */
  readonly members: BatchMember[];
  /** The earliest store deadline among them. */
  answerBy: number | undefined;
  /** The records as the members' admissions leave them, decided from the local copy as they joined. */
  readonly ahead: Map<string, VersionedBucket>;
}

interface BatchMember {
  readonly plans: readonly DescriptorPlan[];
  readonly deadline: CallDeadline | undefined;
  resolve(statuses: DescriptorStatus[]): void;
  reject(error: unknown): void;
}

/** A call's time limits, on performance.now(). */
interface CallDeadline {
  readonly startedAt: number;
  /** By when the store must have answered; a fallback decides after it. */
  readonly answerBy: number;
  /** After this the answer could not reach the caller in time. */
  readonly lateAt: number;
}

/** Time kept to encode and send an answer after deciding. */
const ANSWER_MARGIN_MS = 1;

/** The error for a call whose answer would come too late, or undefined while it is in time. */
function lateness(deadline: CallDeadline | undefined): DeadlinePassedError | undefined {
  const now = performance.now();
  return deadline !== undefined && now >= deadline.lateAt ? new DeadlinePassedError(now - deadline.startedAt) : undefined;
}

function throwIfLate(deadline: CallDeadline | undefined): void {
  const late = lateness(deadline);
  if (late !== undefined) throw late;
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
