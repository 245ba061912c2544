import type { ShardClient } from './redis-client';
import { ShardRing } from './shard-ring';

/** A bucket record as read from its previous owner, to be copied to the new one. */
export interface HandoffSeed {
  readonly key: string;
  readonly record: string;
  readonly ttlMs: number;
}

/** The shards and how the ring places buckets on them. */
export class ShardTopology {
  readonly ring: ShardRing;

  constructor(readonly clients: ReadonlyMap<string, ShardClient>) {
    this.ring = new ShardRing([...clients.keys()]);
  }

  ownerOf(bucketKey: string): { readonly shard: string; readonly client: ShardClient } {
    const shard = this.ring.shardFor(bucketKey);
    return { shard, client: this.clients.get(shard) as ShardClient };
  }

  uses(client: ShardClient): boolean {
    for (const used of this.clients.values()) if (used === client) return true;
    return false;
  }
}

/**
 * The ring before the last shard-list change, for as long as records written under it may
 * matter: a bucket group whose owner changed is seeded, on first use, from its previous owner,
 * so a ring change never hands anyone a fresh full bucket. Remembers (boundedly) which groups
 * it has handed off, so each costs one extra read per process.
 */
export class ShardHandoff {
  private readonly handedOff = new Set<string>();

  constructor(
    readonly previous: ShardTopology,
    readonly untilMs: number,
    private readonly maxRemembered: number,
  ) {}

  /** The previous owner of a group, if it differs from `current`'s and the group was not handed off yet. */
  previousOwner(group: string, bucketKey: string, current: ShardTopology): { readonly shard: string; readonly client: ShardClient } | undefined {
    if (this.handedOff.has(group)) return undefined;
    const before = this.previous.ownerOf(bucketKey);
    return before.client === current.ownerOf(bucketKey).client ? undefined : before;
  }

  done(group: string): void {
    if (this.handedOff.size >= this.maxRemembered) this.handedOff.clear();
    this.handedOff.add(group);
  }
}

/** One round trip: each key's record and remaining time to live on a shard; absent keys give no seed. */
export async function readSeeds(client: ShardClient, prefixedKeys: readonly string[]): Promise<Map<string, HandoffSeed>> {
  const pipeline = client.pipeline();
  for (const key of prefixedKeys) pipeline.get(key).pttl(key);
  const replies = (await pipeline.exec()) ?? [];
  const seeds = new Map<string, HandoffSeed>();
  prefixedKeys.forEach((key, index) => {
    const [recordError, record] = replies[2 * index] ?? [];
    const [ttlError, ttlMs] = replies[2 * index + 1] ?? [];
    if (recordError) throw recordError;
    if (ttlError) throw ttlError;
    if (typeof record === 'string' && typeof ttlMs === 'number' && ttlMs > 0) seeds.set(key, { key, record, ttlMs });
  });
  return seeds;
}
