import { overrideTargetId, type CapacityOverride, type OverrideStore, type OverrideTarget } from '../../core';
import type { RedisShardStore } from './redis-shard-store';

/** The hash holding the overrides; it lives on the shard the ring gives this name. */
const OVERRIDES_KEY = 'overrides';

/**
 * Overrides in Redis, in one hash (target → JSON) on the shard that owns it, so every instance
 * and region reads the same ones. Expired entries are skipped on read and deleted then.
 */
export class RedisOverrideStore implements OverrideStore {
  constructor(private readonly shards: RedisShardStore) {}

  async list(nowMs: number): Promise<CapacityOverride[]> {
    const stored = await this.shards.onOwner(OVERRIDES_KEY, 'overrides', (client, key) => client.hgetall(key));
    const live: CapacityOverride[] = [];
    const expired: string[] = [];
    for (const [id, json] of Object.entries(stored)) {
      const override = parseOverride(json);
      if (override === undefined || override.expiresAtMs <= nowMs) expired.push(id);
      else live.push(override);
    }
    if (expired.length > 0) await this.shards.onOwner(OVERRIDES_KEY, 'overrides', (client, key) => client.hdel(key, ...expired));
    return live;
  }

  /** Also keeps the hash until its last override expires (and no longer), so Redis never holds it forever. */
  async put(override: CapacityOverride, nowMs: number): Promise<void> {
    const ttlMs = Math.max(1, Math.ceil(override.expiresAtMs - nowMs));
    await this.shards.onOwner(OVERRIDES_KEY, 'overrides', (client, key) =>
      client.multi().hset(key, overrideTargetId(override.target), JSON.stringify(override)).pexpire(key, ttlMs, 'NX').pexpire(key, ttlMs, 'GT').exec(),
    );
  }

  async remove(target: OverrideTarget): Promise<boolean> {
    return (await this.shards.onOwner(OVERRIDES_KEY, 'overrides', (client, key) => client.hdel(key, overrideTargetId(target)))) > 0;
  }
}

function parseOverride(json: string): CapacityOverride | undefined {
  try {
    const value = JSON.parse(json) as CapacityOverride;
    return typeof value.expiresAtMs === 'number' && typeof value.target === 'object' ? value : undefined;
  } catch {
    return undefined;
  }
}
