import type { AppliedLimit, BucketStore, Clock, CommitGroup, CommitOutcome, DescriptorStatus, EngineObserver, Limit, VersionedBucket } from '../core';
import { bucketGroup } from '../bucket/bucket-key';
import { storedState } from '../bucket/consume';
import { recordExpiryMs, tokensAt } from '../bucket/token-bucket';
import { applyRequestOf, commitGroups, planGroup, type PlannedCommitGroup } from './commit-groups';
import { decideDescriptors, limitedStatus, NO_LIMIT_STATUS, UNLIMITED_STATUS } from './decide-descriptors';
import type { DescriptorPlan } from './descriptor-plan';
import type { FallbackBuckets } from './fallback-buckets';
import { recordLeftBy, type LocalRecords } from './local-records';

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

/** A store that decides in this process, synchronously (the memory store). */
export type InProcessStore = Required<Pick<BucketStore, 'commitNow'>>;

/** What prepare decided, and the groups (if any) the store must commit or decide. */
export interface PreparedCommit {
  readonly statuses: DescriptorStatus[];
  readonly nowMs: number;
  readonly groups: PlannedCommitGroup[] | undefined;
}

const NO_WRITES: CommitGroup['writes'] = Object.freeze([]);

/** Stands in for a descriptor the store will decide, so local decisions keep request order. */
const NOT_DECIDED_HERE: DescriptorPlan = Object.freeze({ kind: 'no_limit' });

export interface CommitPlannerOptions {
  readonly clock: Clock;
  readonly records: LocalRecords;
  readonly fallback: FallbackBuckets;
  readonly counters: EngineCounters;
  readonly observer: EngineObserver;
  /** How long the store keeps a request id's answer (ms). */
  readonly idempotencyTtlMs: number;
}

/**
 * One commit's two ends: before it, which groups this instance decides from its local copy (sent
 * as conditional writes) and which the store must decide; after it, how the store's outcomes
 * (written, decided, unavailable) become statuses, local copies, conflict counts and fallback
 * decisions. The engine (RateLimiter) orders calls and talks to the store in between.
 */
export class CommitPlanner {
  private readonly clock: Clock;
  private readonly records: LocalRecords;
  private readonly fallback: FallbackBuckets;
  private readonly counters: EngineCounters;
  private readonly observer: EngineObserver;
  private readonly idempotencyTtlMs: number;

  constructor(options: CommitPlannerOptions) {
    this.clock = options.clock;
    this.records = options.records;
    this.fallback = options.fallback;
    this.counters = options.counters;
    this.observer = options.observer;
    this.idempotencyTtlMs = options.idempotencyTtlMs;
  }

  /**
   * Groups whose records are all in the local copy are decided here: an exact denial needs no
   * round trip, and an admission becomes a conditional write where this instance has lately been
   * the records' only writer. Every other group is sent for the store to decide. Either way, one
   * commit: a group whose version moved meanwhile is decided by the store in that same round
   * trip, and its verdicts replace ours (settle). `ahead`: decide from the records as the
   * admissions queued and in flight will leave them (LocalRecords.lookupAhead), for a call that
   * arrives while its buckets are busy: it is answered now if it needs no commit at all.
   */
  prepare(plans: readonly DescriptorPlan[], keys: readonly string[], requestId: string | undefined, ahead?: { readonly queued: ReadonlyMap<string, VersionedBucket> | undefined }): PreparedCommit {
    const nowMs = this.clock.nowMs();
    const records = new Map<string, VersionedBucket | undefined>();
    const uncached = new Set<string>();
    const shared = new Set<string>();
    for (const key of keys) {
      const local = ahead === undefined ? this.records.lookup(key, nowMs) : this.records.lookupAhead(key, nowMs, ahead.queued);
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

  /**
   * The whole commit at once, for a store in this process (BucketStore.commitNow) and a call
   * without a request id: each limited descriptor goes to the store as its own group, in request
   * order, and the store decides it. Nothing runs between the store's read and its write, so there
   * is no copy to consult, no conflict and no fallback; and one group per descriptor decides
   * exactly as one group for all would, a later descriptor seeing an earlier one's writes.
   */
  decideNow(plans: readonly DescriptorPlan[], store: InProcessStore): DescriptorStatus[] {
    const groups: CommitGroup[] = [];
    for (const plan of plans) {
      if (plan.kind === 'limited') groups.push({ writes: NO_WRITES, requests: [applyRequestOf(plan)] });
    }
    const outcomes = groups.length === 0 ? [] : store.commitNow(groups, this.clock.nowMs());
    this.counters.groupsCommitted += groups.length;
    let groupIndex = 0;
    return plans.map((plan) => {
      if (plan.kind !== 'limited') return plan.kind === 'unlimited' ? UNLIMITED_STATUS : NO_LIMIT_STATUS;
      const outcome = outcomes[groupIndex++];
      return verdictStatus(plan, outcome?.kind === 'decided' ? outcome.results[0] : undefined, `descriptor group ${groupIndex - 1}`);
    });
  }

  /** Takes the store's outcomes: our writes landed, or its verdicts replace ours, or a fallback decides. */
  settle(plans: readonly DescriptorPlan[], prepared: PreparedCommit, outcomes: readonly CommitOutcome[]): DescriptorStatus[] {
    const { statuses, nowMs, groups = [] } = prepared;
    const doneAtMs = this.clock.nowMs();
    this.counters.groupsCommitted += groups.length;
    groups.forEach((group, groupIndex) => {
      const outcome = outcomes[groupIndex];
      if (outcome?.kind === 'written') {
        for (const write of group.writes) this.records.written(write.key, recordLeftBy(write), write.expireAtMs, doneAtMs);
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
        if (this.records.enabled) this.rememberStoreRecords(group, outcome.results, conflicted, nowMs, doneAtMs);
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
      statuses[planIndex] = verdictStatus(plans[planIndex] as DescriptorPlan & { kind: 'limited' }, results[requestIndex], `descriptor ${planIndex}`);
    });
  }

  /** Keeps the records a store decision left, and whether anyone but us had changed them since our copy. */
  private rememberStoreRecords(group: PlannedCommitGroup, results: readonly (readonly AppliedLimit[])[], conflicted: boolean, decidedAtMs: number, atMs: number): void {
    const debited = new Map<string, number>();
    for (const debit of group.debits ?? []) {
      for (const { key } of debit.limits) debited.set(key, (debited.get(key) ?? 0) + 1);
    }
    const seen = new Map<string, { firstSeen: VersionedBucket | undefined; ownSteps: number; record: VersionedBucket | undefined; conflicted: boolean; expireAtMs: number | undefined }>();
    group.requests.forEach((request, requestIndex) => {
      const admitted = results[requestIndex]?.every((applied) => applied.allowed) === true;
      request.limits.forEach(({ key, limit }, limitIndex) => {
        const applied = results[requestIndex]?.[limitIndex];
        const record = applied?.record;
        const expireAtMs = record === undefined || applied === undefined ? undefined : shardExpiryMs(limit, record, decidedAtMs, applied.resetAfterMs);
        const earlier = seen.get(key);
        if (earlier !== undefined) {
          seen.set(key, { ...earlier, record, expireAtMs });
          return;
        }
        // Our request moved the version only if it wrote: counting a denial that wrote nothing
        // as a step took another instance's write for our own.
        const wrote = applied !== undefined && storedState(limit.algorithm, request.hits, applied.allowed, admitted);
        seen.set(key, { firstSeen: record, ownSteps: (debited.get(key) ?? 0) + (wrote ? 1 : 0), record, conflicted, expireAtMs });
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
}

/**
 * When the shard drops a record the store decided on, from the reset time it returned: a fixed
 * window's when the window ends; a token bucket's when it is full again, but not within its
 * minimum lifetime (as the shard computed it when it wrote the record).
 */
function shardExpiryMs(limit: Limit, record: VersionedBucket, decidedAtMs: number, resetAfterMs: number): number {
  const fullAtMs = Math.max(decidedAtMs, record.state.updatedAtMs) + resetAfterMs;
  return limit.algorithm === 'fixed_window' ? fullAtMs : recordExpiryMs(record.state.updatedAtMs, fullAtMs);
}

/** A limited descriptor's status from the store's (or a fallback's) verdicts on its limits; `what` names it if they are missing. */
function verdictStatus(plan: DescriptorPlan & { kind: 'limited' }, verdicts: readonly AppliedLimit[] | undefined, what: string): DescriptorStatus {
  if (verdicts?.length !== plan.limits.length) throw new Error(`no verdict for ${what}`);
  return limitedStatus(plan, plan.limits.map(({ limit }, limitIndex) => ({ limit, decision: verdicts[limitIndex] as AppliedLimit })));
}
