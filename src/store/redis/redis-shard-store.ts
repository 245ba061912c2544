import {
  UNIT_SECONDS,
  StoreUnavailableError,
  type AppliedLimit,
  type ApplyRequest,
  errorMessage,
  type BucketStore,
  type BucketWrite,
  type Clock,
  type CompareAndSetResult,
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

export interface ShardHealth {
  readonly shard: string;
  readonly ok: boolean;
  readonly latencyMs?: number;
  readonly error?: string;
}

/**
 * BucketStore over named Redis shards. Keys are grouped by their owner on the ring; each shard
 * gets one MGET (load) or one bucket-cas.lua call (write) per call, all shards in parallel.
 * Any failure of a shard becomes StoreUnavailableError naming it (transient: the edge answers
 * UNAVAILABLE).
 */
export class RedisShardStore implements BucketStore {
  private readonly shards: ReadonlyMap<string, ShardClient>;
  private readonly ring: ShardRing;
  private readonly clock: Clock;
  private readonly keyPrefix: string;

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

  async compareAndSet(writes: readonly BucketWrite[]): Promise<CompareAndSetResult> {
    const nowMs = this.clock.nowMs();
    const refused = new Map<string, VersionedBucket | undefined>();
    await Promise.all(
      [...this.groupByShard(writes)].map(async ([shard, group]) => {
        const args: (string | number)[] = [group.length, ...group.map((write) => this.keyPrefix + write.key)];
        for (const write of group) {
          // Relative TTL: expiry runs on the shard's clock, whatever this instance's clock says.
          const ttlMs = Math.max(1, Math.ceil(write.expireAtMs - nowMs));
          args.push(write.expectedVersion, String(write.state.tokens), Math.round(write.state.updatedAtMs), ttlMs);
        }
        const reply = await this.onShard(shard, (client) => client.bucketCas(...args));
        if (reply[0] === 1) return;
        group.forEach((write, index) => refused.set(write.key, parseBucketRecord(String(reply[index + 1] ?? ''))));
      }),
    );
    return { refused };
  }

  async applyOnShard(requests: readonly ApplyRequest[], nowMs: number): Promise<AppliedLimit[][]> {
    const results = new Array<AppliedLimit[]>(requests.length);
    // A request's limits share a bucket group, hence a shard (see ShardRing).
    const byShard = this.groupByShard(
      requests.map((request, index) => ({ key: request.limits[0]?.key ?? '', request, index })).filter((item) => item.key !== ''),
    );
    await Promise.all(
      [...byShard].map(async ([shard, items]) => {
        const keys: string[] = [];
        const keyIndex = new Map<string, number>();
        const args: (string | number)[] = [Math.round(nowMs), items.length];
        for (const { request } of items) {
          args.push(request.hits, request.limits.length);
          for (const { key, limit } of request.limits) {
            const prefixed = this.keyPrefix + key;
            if (!keyIndex.has(prefixed)) keyIndex.set(prefixed, keys.push(prefixed));
            args.push(keyIndex.get(prefixed) as number, limit.algorithm === 'fixed_window' ? 1 : 0);
            args.push(limit.requestsPerUnit, UNIT_SECONDS[limit.unit] * 1000, limit.capacity);
          }
        }
        const reply = await this.onShard(shard, (client) => client.bucketApply(keys.length, ...keys, ...args));
        let cursor = 0;
        for (const { request, index } of items) {
          results[index] = request.limits.map(() => {
            const applied = {
              allowed: Number(reply[cursor]) === 1,
              remaining: Number(reply[cursor + 1]),
              resetAfterMs: Number(reply[cursor + 2]),
              record: parseBucketRecord(String(reply[cursor + 3] ?? '')),
            };
            cursor += 4;
            return applied;
          });
        }
      }),
    );
    return requests.map((_, index) => results[index] ?? []);
  }

  async ping(): Promise<void> {
    const failed = (await this.health()).find((shard) => !shard.ok);
    if (failed !== undefined) throw new StoreUnavailableError(failed.shard, { cause: failed.error });
  }

  /** Per-shard connectivity, for health reporting; never throws. */
  async health(): Promise<ShardHealth[]> {
    return Promise.all(
      [...this.shards].map(async ([shard, client]) => {
        const startedMs = performance.now();
        try {
          await client.ping();
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

  private async onShard<T>(shard: string, command: (client: ShardClient) => Promise<T>): Promise<T> {
    const client = this.shards.get(shard) as ShardClient;
    try {
      return await command(client);
    } catch (error) {
      throw new StoreUnavailableError(shard, { cause: error });
    }
  }
}
