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

/** Longest the commits that gather behind a round in flight wait for it before they go anyway. */
const MAX_GATHER_MS = 2;
/** Longest a shard's answer waits for the rest of its round before it goes to its callers anyway. */
const DEFAULT_ROUND_HOLD_MS = 1;

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

/** Commits gathered for one shard client, not sent yet. */
interface Batch {
  readonly shard: string;
  readonly client: ShardClient;
  readonly commits: Waiting[];
}

/**
 * The script calls sent to the shards together, whose answers go to their callers together:
 * when the last one comes, or `holdMs` after the first if another is still out (a slow shard
 * delays the others' callers by that much at most). Answers reach the engine in one turn of the
 * event loop, so the gRPC answers they lead to leave in one socket write per connection instead
 * of one per shard.
 */
class Round {
  private readonly held: (() => void)[] = [];
  private unanswered: number;
  private released = false;
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(
    calls: number,
    private readonly holdMs: number,
    private readonly onRelease: () => void,
  ) {
    this.unanswered = calls;
  }

  answered(settle: () => void): void {
    this.unanswered--;
    if (this.released) {
      settle();
      return;
    }
    this.held.push(settle);
    if (this.unanswered === 0) this.release();
    else this.holdTimer ??= setTimeout(() => this.release(), this.holdMs);
  }

  private release(): void {
    this.released = true;
    clearTimeout(this.holdTimer);
    for (const settle of this.held.splice(0)) settle();
    this.onRelease();
  }
}

/**
 * Gathers commits into one bucket-commit.lua call per shard, sent to every shard in the same
 * turn as a round: the commits that reach it in one turn of the event loop, and, while a round
 * is on its way, all that arrive until its answers are handed out (MAX_GATHER_MS at most).
 * Under load, commits then share one script run and one socket write per shard instead of
 * costing one each (the write is a system call that wakes the shard: on a busy machine it costs
 * more than the script); alone, a commit is sent at once. Each group stays atomic on its own in
 * the script; a shard failure fails every commit of its call. A call gets the tightest time
 * budget among its commits.
 */
export class CommitBatcher {
  private readonly waiting = new Map<ShardClient, Batch>();
  private roundsOut = 0;
  private flushQueued = false;
  private sendAnyway: NodeJS.Timeout | undefined;

  constructor(
    private readonly calls: ShardCalls,
    private readonly keyPrefix: string,
    private readonly roundHoldMs: number = DEFAULT_ROUND_HOLD_MS,
  ) {}

  /** The outcome (written or decided) of each group of `commit`, in order; rejects if the shard fails. */
  submit(shard: string, client: ShardClient, commit: ShardCommit): Promise<CommitOutcome[]> {
    return new Promise((resolve, reject) => {
      // Keyed by client: after a shard-list reload, a batch for the shard's previous client goes on its own.
      const batch = this.waiting.get(client);
      if (batch === undefined) this.waiting.set(client, { shard, client, commits: [{ commit, resolve, reject }] });
      else batch.commits.push({ commit, resolve, reject });
      if (this.roundsOut > 0) {
        // A round out may have a looser budget than these commits, or a shard that stopped answering.
        this.sendAnyway ??= setTimeout(() => this.flush(), MAX_GATHER_MS);
      } else if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Sends what has gathered as one round; when its answers are handed out, what gathered meanwhile goes. */
  private flush(): void {
    this.flushQueued = false;
    clearTimeout(this.sendAnyway);
    this.sendAnyway = undefined;
    if (this.waiting.size === 0) return;
    const batches = [...this.waiting.values()];
    this.waiting.clear();
    this.roundsOut++;
    const round = new Round(batches.length, this.roundHoldMs, () => {
      this.roundsOut--;
      if (this.waiting.size > 0) this.flush();
    });
    for (const batch of batches) void this.send(batch).then((settle) => round.answered(settle));
  }

  /** Runs one shard's call; resolves, never rejects, with what hands its outcome to its commits. */
  private async send({ shard, client, commits }: Batch): Promise<() => void> {
    try {
      const keys = new KeyList(this.keyPrefix);
      const groupCount = commits.reduce((sum, { commit }) => sum + commit.groups.length, 0);
      const args: (string | number)[] = [Math.round(Math.max(...commits.map(({ commit }) => commit.nowMs))), groupCount];
      for (const { commit } of commits) {
        for (const { group, seeds } of commit.groups) this.encodeGroup(keys, args, group, seeds, commit.storeNowMs);
      }
      const reply = await this.calls.run(shard, client, (c) => c.bucketCommit(keys.all.length, ...keys.all, args.join(' ')), {
        operation: 'commit',
        timeoutMs: Math.min(...commits.map(({ commit }) => commit.giveUpAt)) - performance.now(),
        evenIfDown: commits.some(({ commit }) => commit.evenIfDown === true),
      });
      return () => this.settle(commits, reply);
    } catch (error) {
      return () => {
        for (const waiting of commits) waiting.reject(error);
      };
    }
  }

  /** Hands each commit its groups' outcomes, read in order from the script's reply. */
  private settle(commits: readonly Waiting[], reply: readonly (string | number)[]): void {
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
