import {
  errorMessage,
  StoreUnavailableError,
  type BucketStore,
  type Clock,
  type CommitGroup,
  type CommitOptions,
  type CommitOutcome,
  type ShardHealth,
  type StoreObserver,
  type VersionedBucket,
} from '../../core';
import { bucketGroup } from '../../bucket/bucket-key';
import { parseBucketRecord } from './bucket-record';
import type { ShardClient } from './redis-client';
import { CommitBatcher } from './commit-batcher';
import { ShardCalls } from './shard-calls';
import { ShardHandoff, ShardTopology, readSeeds, type HandoffSeed } from './shard-handoff';

export interface RedisShardStoreOptions {
  /** Shard name → client; the ring hashes the names. */
  readonly shards: ReadonlyMap<string, ShardClient>;
  readonly clock: Clock;
  /** Prepended to every bucket id, so several deployments can share a Redis. */
  readonly keyPrefix?: string;
  /** How long a call may wait when its caller gives no time budget (real ms). */
  readonly commandTimeoutMs?: number;
  /** How long after a shard-list change buckets are still read from their previous owner (ms). */
  readonly handoffMs?: number;
  readonly observer?: StoreObserver | undefined;
  /** Longest a shard's commit answer waits for the other shards of its round (CommitBatcher); tests widen it. */
  readonly roundHoldMs?: number;
}

/** A region's heartbeat as read on one shard. */
export interface HeartbeatReading {
  readonly shard: string;
  readonly region: string;
  /** How old its stamp was when read (the reader's clock minus the writer's). */
  readonly ageMs: number;
}

/** What the store did beyond plain commits, for logs and metrics. */
export interface ShardStoreCounters {
  /** Bucket groups seeded from their previous owner after a shard-list change. */
  handoffs: number;
  /** Handoff reads that failed (previous owner down): the group went on without its old record. */
  handoffMisses: number;
}

/** Handed-off groups remembered per shard-list change; a forgotten one is read again, harmlessly. */
const MAX_REMEMBERED_HANDOFFS = 100_000;

const NO_SEEDS: readonly HandoffSeed[] = Object.freeze([]);

function groupKey(group: CommitGroup): string {
  const key = group.writes[0]?.key ?? group.requests[0]?.limits[0]?.key ?? group.debits?.[0]?.limits[0]?.key;
  if (key === undefined) throw new RangeError('a commit group needs a write, a request or a debit');
  return key;
}

/**
 * BucketStore over named Redis shards. Keys are grouped by their owner on the ring; each shard
 * gets one MGET (load) or one bucket-commit.lua call (commit) per call, all shards in parallel,
 * each bounded by the caller's time budget. A shard that fails becomes an `unavailable` outcome
 * for its groups only. After a shard-list change (reshard), a group whose owner changed is first
 * seeded from its previous owner.
 */
export class RedisShardStore implements BucketStore {
  private readonly clock: Clock;
  private readonly keyPrefix: string;
  private readonly commandTimeoutMs: number;
  private readonly handoffMs: number;
  private readonly calls: ShardCalls;
  private readonly batcher: CommitBatcher;
  private readonly observer: StoreObserver | undefined;
  private topology: ShardTopology;
  private handoff: ShardHandoff | undefined;
  readonly counters: ShardStoreCounters = { handoffs: 0, handoffMisses: 0 };

  constructor(options: RedisShardStoreOptions) {
    this.topology = new ShardTopology(options.shards);
    this.clock = options.clock;
    this.keyPrefix = options.keyPrefix ?? 'rl:';
    this.commandTimeoutMs = options.commandTimeoutMs ?? 100;
    this.handoffMs = options.handoffMs ?? 86_400_000;
    this.observer = options.observer;
    this.calls = new ShardCalls(options.observer);
    this.batcher = new CommitBatcher(this.calls, this.keyPrefix, options.roundHoldMs);
  }

  /** The shards in use, by name. */
  get shards(): ReadonlyMap<string, ShardClient> {
    return this.topology.clients;
  }

  /**
   * Moves to a new shard list. The old ring is kept for `handoffMs` to hand buckets off; clients
   * that neither ring uses any more are closed (the caller reuses a client for an unchanged shard).
   */
  reshard(next: ReadonlyMap<string, ShardClient>): void {
    const retired = [...this.topology.clients.values(), ...(this.handoff?.previous.clients.values() ?? [])];
    const previous = this.topology;
    this.topology = new ShardTopology(next);
    this.handoff = new ShardHandoff(previous, this.clock.nowMs() + this.handoffMs, MAX_REMEMBERED_HANDOFFS);
    this.closeUnused(retired);
  }

  async load(keys: readonly string[]): Promise<(VersionedBucket | undefined)[]> {
    this.endHandoffIfDue();
    const result = new Array<VersionedBucket | undefined>(keys.length);
    await Promise.all(
      [...this.groupByOwner(keys.map((key, index) => ({ key, index })))].map(async ([shard, items]) => {
        const { client } = this.topology.ownerOf(items[0]?.key ?? '');
        const records = await this.calls.run(shard, client, (c) => c.mget(items.map((item) => this.keyPrefix + item.key)), { operation: 'load', timeoutMs: this.commandTimeoutMs });
        items.forEach((item, position) => {
          result[item.index] = parseBucketRecord(records[position]);
        });
      }),
    );
    await Promise.all(
      keys.map(async (key, index) => {
        const before = result[index] === undefined ? this.handoff?.previousOwner(bucketGroup(key), key, this.topology) : undefined;
        if (before === undefined) return;
        const seeds = await this.calls.run(before.shard, before.client, (c) => readSeeds(c, [this.keyPrefix + key]), { operation: 'handoff_read', timeoutMs: this.commandTimeoutMs });
        result[index] = parseBucketRecord(seeds.get(this.keyPrefix + key)?.record);
      }),
    );
    return result;
  }

  async commit(groups: readonly CommitGroup[], nowMs: number, options: CommitOptions = {}): Promise<CommitOutcome[]> {
    this.endHandoffIfDue();
    const giveUpAt = performance.now() + (options.timeoutMs ?? this.commandTimeoutMs);
    const storeNowMs = this.clock.nowMs();
    const [only] = groups;
    // The common call: one descriptor, one group, no handoff running. Straight to its shard's batch.
    if (groups.length === 1 && only !== undefined && this.handoff === undefined) {
      const { shard, client } = this.topology.ownerOf(groupKey(only));
      return this.batcher.submit(shard, client, { groups: [{ group: only, seeds: NO_SEEDS }], nowMs, storeNowMs, giveUpAt, evenIfDown: options.evenIfDown }).catch((error: unknown) => [{ kind: 'unavailable', error: error as Error }]);
    }
    const outcomes = new Array<CommitOutcome>(groups.length);
    // Every key of a group shares a bucket group, hence a shard; any of them places the group.
    const byShard = this.groupByOwner(groups.map((group, index) => ({ key: groupKey(group), group, index })));
    await Promise.all(
      [...byShard].map(async ([shard, items]) => {
        const { client } = this.topology.ownerOf(items[0]?.key ?? '');
        const seeds = await this.handoffSeeds(items, giveUpAt);
        let results: CommitOutcome[];
        try {
          results = await this.batcher.submit(shard, client, {
            groups: items.map(({ group, index }) => ({ group, seeds: seeds.get(index) ?? [] })),
            nowMs,
            storeNowMs,
            giveUpAt,
            evenIfDown: options.evenIfDown,
          });
        } catch (error) {
          for (const { index } of items) outcomes[index] = { kind: 'unavailable', error: error as Error };
          return;
        }
        items.forEach(({ key, index }, position) => {
          if (seeds.has(index)) this.handoff?.done(bucketGroup(key));
          outcomes[index] = results[position] as CommitOutcome;
        });
      }),
    );
    return outcomes;
  }

  /** Runs a command on the shard that owns `key` (given the prefixed key), with the store's timeout and breaker. */
  onOwner<T>(key: string, operation: string, command: (client: ShardClient, prefixedKey: string) => Promise<T>): Promise<T> {
    const { shard, client } = this.topology.ownerOf(key);
    return this.calls.run(shard, client, (c) => command(c, this.keyPrefix + key), { operation, timeoutMs: this.commandTimeoutMs });
  }

  placement(key: string): string {
    return this.topology.ring.shardFor(key);
  }

  /** Deletes the records on their owner, and on their previous owner while a handoff runs (else the handoff would bring them back). */
  async remove(keys: readonly string[]): Promise<void> {
    this.endHandoffIfDue();
    const targets = new Map<ShardClient, { shard: string; keys: string[] }>();
    for (const key of keys) {
      const owners = [this.topology.ownerOf(key), ...(this.handoff === undefined ? [] : [this.handoff.previous.ownerOf(key)])];
      for (const { shard, client } of owners) {
        const entry = targets.get(client) ?? { shard, keys: [] };
        entry.keys.push(this.keyPrefix + key);
        targets.set(client, entry);
      }
    }
    await Promise.all([...targets].map(([client, { shard, keys: prefixed }]) => this.calls.run(shard, client, (c) => c.del(...prefixed), { operation: 'remove', timeoutMs: this.commandTimeoutMs })));
  }

  /**
   * Stamps `region`'s heartbeat (this clock's time) on every shard and reads every region's
   * stamps there, in one round trip per shard: how old each stamp was when read. Shards that do
   * not answer are left out.
   */
  async exchangeHeartbeats(region: string, keepMs: number): Promise<HeartbeatReading[]> {
    const key = `${this.keyPrefix}heartbeats`;
    const readings = await Promise.all(
      [...this.topology.clients].map(async ([shard, client]) => {
        try {
          const stampedAt = this.clock.nowMs();
          const replies = await this.calls.run(shard, client, (c) => c.multi().hset(key, region, String(stampedAt)).pexpire(key, keepMs).hgetall(key).exec(), {
            operation: 'heartbeat',
            timeoutMs: this.commandTimeoutMs,
          });
          const stamps = (replies?.[2]?.[1] ?? {}) as Record<string, string>;
          const readAt = this.clock.nowMs();
          return Object.entries(stamps).map(([from, stamp]) => ({ shard, region: from, ageMs: readAt - Number(stamp) }));
        } catch {
          return [];
        }
      }),
    );
    return readings.flat();
  }

  async ping(): Promise<void> {
    const failed = (await this.health()).find((shard) => !shard.ok);
    if (failed !== undefined) throw new StoreUnavailableError(failed.shard, { cause: failed.error });
  }

  /** Per-shard connectivity, for health reporting; never throws. */
  async health(): Promise<ShardHealth[]> {
    return Promise.all(
      [...this.topology.clients].map(async ([shard, client]) => {
        const startedMs = performance.now();
        try {
          await this.calls.run(shard, client, (c) => c.ping(), { operation: 'ping', timeoutMs: this.commandTimeoutMs, probe: true });
          return { shard, ok: true, latencyMs: performance.now() - startedMs };
        } catch (error) {
          return { shard, ok: false, error: errorMessage(error) };
        }
      }),
    );
  }

  async close(): Promise<void> {
    const clients = new Set([...this.topology.clients.values(), ...(this.handoff?.previous.clients.values() ?? [])]);
    await Promise.all([...clients].map((client) => client.quit().catch(() => client.disconnect())));
  }

  /**
   * For groups whose owner changed and that were not handed off yet: their records on the
   * previous owner, one read per previous shard. Groups whose previous owner does not answer
   * go on without (counted); they are tried again on their next use.
   */
  private async handoffSeeds(items: readonly { key: string; group: CommitGroup; index: number }[], giveUpAt: number): Promise<Map<number, HandoffSeed[]>> {
    const seeds = new Map<number, HandoffSeed[]>();
    const handoff = this.handoff;
    if (handoff === undefined) return seeds;
    const byPrevious = new Map<ShardClient, { shard: string; items: { index: number; keys: string[] }[] }>();
    for (const { key, group, index } of items) {
      const before = handoff.previousOwner(bucketGroup(key), key, this.topology);
      if (before === undefined) continue;
      const entry = byPrevious.get(before.client) ?? { shard: before.shard, items: [] };
      entry.items.push({ index, keys: [...bucketKeysOf(group)].map((bucketKey) => this.keyPrefix + bucketKey) });
      byPrevious.set(before.client, entry);
    }
    await Promise.all(
      [...byPrevious].map(async ([client, { shard, items: moved }]) => {
        try {
          const found = await this.calls.run(shard, client, (c) => readSeeds(c, moved.flatMap(({ keys }) => keys)), { operation: 'handoff_read', timeoutMs: giveUpAt - performance.now() });
          for (const { index, keys } of moved) {
            seeds.set(index, keys.flatMap((key) => found.get(key) ?? []));
            this.counters.handoffs++;
            this.observer?.handoff('seeded');
          }
        } catch {
          this.counters.handoffMisses += moved.length;
          moved.forEach(() => this.observer?.handoff('missed'));
        }
      }),
    );
    return seeds;
  }

  private endHandoffIfDue(): void {
    if (this.handoff === undefined || this.clock.nowMs() < this.handoff.untilMs) return;
    const retired = [...this.handoff.previous.clients.values()];
    this.handoff = undefined;
    this.closeUnused(retired);
  }

  private closeUnused(clients: readonly ShardClient[]): void {
    for (const client of new Set(clients)) {
      if (this.topology.uses(client) || this.handoff?.previous.uses(client) === true) continue;
      client.quit().catch(() => client.disconnect());
    }
  }

  private groupByOwner<T extends { key: string }>(items: readonly T[]): Map<string, T[]> {
    const groups = new Map<string, T[]>();
    for (const item of items) {
      const shard = this.topology.ring.shardFor(item.key);
      const group = groups.get(shard);
      if (group === undefined) groups.set(shard, [item]);
      else group.push(item);
    }
    return groups;
  }
}

/** Every bucket a group touches (not its idempotency key: a retry across a ring change is not followed). */
function bucketKeysOf(group: CommitGroup): Set<string> {
  const keys = new Set<string>(group.writes.map(({ key }) => key));
  for (const request of [...group.requests, ...(group.debits ?? [])]) {
    for (const { key } of request.limits) keys.add(key);
  }
  return keys;
}
