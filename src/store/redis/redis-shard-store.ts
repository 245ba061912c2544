import {
  StoreUnavailableError,
  UNIT_SECONDS,
  errorMessage,
  type BucketStore,
  type Clock,
  type CommitGroup,
  type CommitOutcome,
  type VersionedBucket,
} from '../../core';
import { parseBucketRecord } from './bucket-record';
import type { ShardClient } from './redis-client';
import type { ShardRing } from './shard-ring';

export interface RedisShardStoreOptions {
  /** Shard name → client. Every name on the ring must have one. */
  readonly shards: ReadonlyMap<string, ShardClient>;
  readonly ring: ShardRing;
  readonly clock: Clock;
  /** Prepended to every bucket id, so several deployments can share a Redis. */
  readonly keyPrefix?: string;
}

const WRITTEN: CommitOutcome = Object.freeze({ kind: 'written' });

/** How long a failed shard is skipped before a request tries it again. */
const SHARD_RETRY_MS = 1000;

function groupKey(group: CommitGroup): string {
  const key = group.writes[0]?.key ?? group.requests[0]?.limits[0]?.key ?? group.debits?.[0]?.limits[0]?.key;
  if (key === undefined) throw new RangeError('a commit group needs a write, a request or a debit');
  return key;
}

/** The KEYS of one script call: each key once, referred to by its 1-based index. */
class KeyList {
  readonly all: string[] = [];
  private readonly indexes = new Map<string, number>();

  constructor(private readonly prefix: string) {}

  indexOf(key: string): number {
    let index = this.indexes.get(key);
    if (index === undefined) {
      index = this.all.push(this.prefix + key);
      this.indexes.set(key, index);
    }
    return index;
  }

  get size(): number {
    return this.all.length;
  }
}

export interface ShardHealth {
  readonly shard: string;
  readonly ok: boolean;
  readonly latencyMs?: number;
  readonly error?: string;
}

/**
 * BucketStore over named Redis shards. Keys are grouped by their owner on the ring; each shard
 * gets one MGET (load) or one bucket-commit.lua call (write) per call, all shards in parallel.
 * Any failure of a shard becomes StoreUnavailableError naming it (transient: the edge answers
 * UNAVAILABLE).
 */
export class RedisShardStore implements BucketStore {
  private readonly shards: ReadonlyMap<string, ShardClient>;
  private readonly ring: ShardRing;
  private readonly clock: Clock;
  private readonly keyPrefix: string;
  private readonly downUntilMs = new Map<string, number>();

  constructor(options: RedisShardStoreOptions) {
    for (const shard of options.ring.shards) {
      if (!options.shards.has(shard)) throw new RangeError(`shard '${shard}' is on the ring but has no client`);
    }
    this.shards = options.shards;
    this.ring = options.ring;
    this.clock = options.clock;
    this.keyPrefix = options.keyPrefix ?? 'rl:';
  }

  async load(keys: readonly string[]): Promise<(VersionedBucket | undefined)[]> {
    const result = new Array<VersionedBucket | undefined>(keys.length);
    await Promise.all(
      [...this.groupByShard(keys.map((key, index) => ({ key, index })))].map(async ([shard, items]) => {
        const records = await this.onShard(shard, (client) => client.mget(items.map((item) => this.keyPrefix + item.key)));
        items.forEach((item, position) => {
          result[item.index] = parseBucketRecord(records[position]);
        });
      }),
    );
    return result;
  }

  async commit(groups: readonly CommitGroup[], nowMs: number): Promise<CommitOutcome[]> {
    const outcomes = new Array<CommitOutcome>(groups.length);
    const storeNowMs = this.clock.nowMs();
    // Every key of a group shares a bucket group, hence a shard; any of them places the group.
    const byShard = this.groupByShard(groups.map((group, index) => ({ key: groupKey(group), group, index })));
    await Promise.all(
      [...byShard].map(async ([shard, items]) => {
        const keys = new KeyList(this.keyPrefix);
        const args: (string | number)[] = [Math.round(nowMs), items.length];
        for (const { group } of items) {
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
        let reply: (string | number)[];
        try {
          reply = await this.onShard(shard, (client) => client.bucketCommit(keys.size, ...keys.all, ...args));
        } catch (error) {
          for (const { index } of items) outcomes[index] = { kind: 'unavailable', error: error as Error };
          return;
        }
        let cursor = 0;
        for (const { group, index } of items) {
          if (Number(reply[cursor++]) === 1) {
            outcomes[index] = WRITTEN;
            continue;
          }
          const results = group.requests.map((request) =>
            request.limits.map(() => {
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
          outcomes[index] = { kind: 'decided', results };
        }
      }),
    );
    return outcomes;
  }

  async ping(): Promise<void> {
    const failed = (await this.health()).find((shard) => !shard.ok);
    if (failed !== undefined) throw new StoreUnavailableError(failed.shard, { cause: failed.error });
  }

  /** Per-shard connectivity, for health reporting; never throws. */
  async health(): Promise<ShardHealth[]> {
    return Promise.all(
      [...this.shards.keys()].map(async (shard) => {
        const startedMs = performance.now();
        try {
          await this.onShard(shard, (shardClient) => shardClient.ping(), true);
          return { shard, ok: true, latencyMs: performance.now() - startedMs };
        } catch (error) {
          return { shard, ok: false, error: errorMessage(error) };
        }
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((client) => client.quit().catch(() => client.disconnect())));
  }

  private groupByShard<T extends { key: string }>(items: readonly T[]): Map<string, T[]> {
    const groups = new Map<string, T[]>();
    for (const item of items) {
      const shard = this.ring.shardFor(item.key);
      const group = groups.get(shard);
      if (group === undefined) groups.set(shard, [item]);
      else group.push(item);
    }
    return groups;
  }

  /**
   * Runs a command on a shard. A shard that just failed is not tried again for SHARD_RETRY_MS
   * (its callers fall back at once instead of each waiting for the command timeout); the
   * health check's ping keeps probing it and closes the breaker when it answers.
   */
  private async onShard<T>(shard: string, command: (client: ShardClient) => Promise<T>, probe = false): Promise<T> {
    const client = this.shards.get(shard) as ShardClient;
    const downUntilMs = this.downUntilMs.get(shard);
    if (!probe && downUntilMs !== undefined && this.clock.nowMs() < downUntilMs) {
      throw new StoreUnavailableError(shard, { cause: new Error('failed recently; retrying after a pause') });
    }
    try {
      const result = await command(client);
      this.downUntilMs.delete(shard);
      return result;
    } catch (error) {
      this.downUntilMs.set(shard, this.clock.nowMs() + SHARD_RETRY_MS);
      throw new StoreUnavailableError(shard, { cause: error });
    }
  }
}
