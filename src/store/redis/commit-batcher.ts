import { UNIT_SECONDS, type AppliedLimit, type CommitGroup, type CommitOutcome } from '../../core';
import { parseBucketRecord } from './bucket-record';
import type { ShardClient } from './redis-client';
import type { ShardCalls } from './shard-calls';
import type { HandoffSeed } from './shard-handoff';

/** One commit's groups for one shard, as the store hands them over. */
export interface ShardCommit {
  readonly groups: readonly { readonly group: CommitGroup; readonly seeds: readonly HandoffSeed[] }[];
  /** The caller's clock, for the script's decisions. */
  readonly nowMs: number;
  /** This instance's clock when the commit started, for relative TTLs. */
  readonly storeNowMs: number;
  /** performance.now() by which the caller needs the answer. */
  readonly giveUpAt: number;
  readonly evenIfDown?: boolean | undefined;
}

interface Waiting {
  readonly commit: ShardCommit;
  resolve(outcomes: CommitOutcome[]): void;
  reject(error: unknown): void;
}

const WRITTEN: CommitOutcome = Object.freeze({ kind: 'written' });

/** Script calls on their way to one shard before further commits wait to go together. */
const MAX_SCRIPTS_IN_FLIGHT = 1;
/** Longest a batch waits for the call in flight before it goes anyway. */
const MAX_GATHER_MS = 2;

/** The KEYS of one script call: each key once, referred to by its 1-based index. */
class KeyList {
  readonly all: string[] = [];
  private readonly indexes = new Map<string, number>();

  constructor(private readonly prefix: string) {}

  indexOf(key: string): number {
    return this.indexOfPrefixed(this.prefix + key);
  }

  indexOfPrefixed(prefixedKey: string): number {
    let index = this.indexes.get(prefixedKey);
    if (index === undefined) {
      index = this.all.push(prefixedKey);
      this.indexes.set(prefixedKey, index);
    }
    return index;
  }
}

/** Commits gathered for one shard, not sent yet. */
interface Batch {
  readonly client: ShardClient;
  readonly commits: Waiting[];
  sent: boolean;
  sendAnyway?: NodeJS.Timeout;
}

/**
 * Gathers the commits for one shard into one bucket-commit.lua call: those that reach it in the
 * same turn of the event loop, and, while MAX_SCRIPTS_IN_FLIGHT script calls are already on
 * their way to that shard, all that arrive until one comes back (MAX_GATHER_MS at most). Under
 * load, commits then share one script run and one socket write instead of costing one each (the
 * write is a system call that wakes the shard: on a busy machine it costs more than the script);
 * alone, a commit is sent at once. Each group stays atomic on its own in the script; a shard
 * failure fails every commit of the call. The call gets the tightest time budget among them.
 */
export class CommitBatcher {
  private readonly waiting = new Map<string, Batch>();
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly calls: ShardCalls,
    private readonly keyPrefix: string,
  ) {}

  /** The outcome (written or decided) of each group of `commit`, in order; rejects if the shard fails. */
  submit(shard: string, client: ShardClient, commit: ShardCommit): Promise<CommitOutcome[]> {
    return new Promise((resolve, reject) => {
      const pending = this.waiting.get(shard);
      if (pending !== undefined && pending.client === client) {
        pending.commits.push({ commit, resolve, reject });
        return;
      }
      // A batch for the shard's previous client (the shard list was reloaded) goes as it is.
      if (pending !== undefined) this.flush(shard, pending);
      const started: Batch = { client, commits: [{ commit, resolve, reject }], sent: false };
      this.waiting.set(shard, started);
      if ((this.inFlight.get(shard) ?? 0) < MAX_SCRIPTS_IN_FLIGHT) setImmediate(() => this.flush(shard, started));
      // A call in flight may have a looser budget than these commits, or a shard that stopped answering.
      else started.sendAnyway = setTimeout(() => this.flush(shard, started), MAX_GATHER_MS);
    });
  }

  /** Sends a batch (once); when its call comes back, the batch that gathered meanwhile goes. */
  private flush(shard: string, batch: Batch): void {
    if (batch.sent) return;
    batch.sent = true;
    clearTimeout(batch.sendAnyway);
    if (this.waiting.get(shard) === batch) this.waiting.delete(shard);
    this.inFlight.set(shard, (this.inFlight.get(shard) ?? 0) + 1);
    void this.send(shard, batch.client, batch.commits).finally(() => {
      const stillInFlight = (this.inFlight.get(shard) ?? 1) - 1;
      if (stillInFlight > 0) this.inFlight.set(shard, stillInFlight);
      else this.inFlight.delete(shard);
      const next = this.waiting.get(shard);
      if (next !== undefined) this.flush(shard, next);
    });
  }

  private async send(shard: string, client: ShardClient, commits: readonly Waiting[]): Promise<void> {
    const keys = new KeyList(this.keyPrefix);
    const groupCount = commits.reduce((sum, { commit }) => sum + commit.groups.length, 0);
    const args: (string | number)[] = [Math.round(Math.max(...commits.map(({ commit }) => commit.nowMs))), groupCount];
    for (const { commit } of commits) {
      for (const { group, seeds } of commit.groups) this.encodeGroup(keys, args, group, seeds, commit.storeNowMs);
    }
    let reply: (string | number)[];
    try {
      reply = await this.calls.run(shard, client, (c) => c.bucketCommit(keys.all.length, ...keys.all, args.join(' ')), {
        operation: 'commit',
        timeoutMs: Math.min(...commits.map(({ commit }) => commit.giveUpAt)) - performance.now(),
        evenIfDown: commits.some(({ commit }) => commit.evenIfDown === true),
      });
    } catch (error) {
      for (const waiting of commits) waiting.reject(error);
      return;
    }
    let cursor = 0;
    for (const waiting of commits) {
      waiting.resolve(
        waiting.commit.groups.map(({ group }) => {
          if (Number(reply[cursor++]) === 1) return WRITTEN;
          const results = group.requests.map((request) =>
            request.limits.map((): AppliedLimit => {
              const applied = {
                allowed: Number(reply[cursor]) === 1,
                remaining: Number(reply[cursor + 1]),
                resetAfterMs: Number(reply[cursor + 2]),
                record: parseBucketRecord(String(reply[cursor + 3] ?? '')),
              };
              cursor += 4;
              return applied;
            }),
          );
          return { kind: 'decided', results };
        }),
      );
    }
  }

  /** One group's arguments, in bucket-commit.lua's order. */
  private encodeGroup(keys: KeyList, args: (string | number)[], group: CommitGroup, seeds: readonly HandoffSeed[], storeNowMs: number): void {
    args.push(seeds.length);
    for (const seed of seeds) args.push(keys.indexOfPrefixed(seed.key), seed.record, seed.ttlMs);
    args.push(group.writes.length);
    for (const write of group.writes) {
      // Relative TTL: expiry runs on the shard's clock, whatever this instance's clock says.
      const ttlMs = Math.max(1, Math.ceil(write.expireAtMs - storeNowMs));
      args.push(keys.indexOf(write.key), write.expectedVersion, String(write.state.tokens), Math.round(write.state.updatedAtMs), ttlMs);
    }
    for (const requests of [group.requests, group.debits ?? []]) {
      args.push(requests.length);
      for (const request of requests) {
        args.push(request.hits, request.limits.length);
        for (const { key, limit } of request.limits) {
          args.push(keys.indexOf(key), limit.algorithm === 'fixed_window' ? 1 : 0, limit.requestsPerUnit, UNIT_SECONDS[limit.unit] * 1000, limit.capacity);
        }
      }
    }
    args.push(group.idempotency === undefined ? 0 : keys.indexOf(group.idempotency.key), group.idempotency?.ttlMs ?? 0);
  }
}
