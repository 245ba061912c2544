import HashRing from 'hashring';
import { bucketGroup } from '../../bucket/bucket-key';

/**
 * Which shard owns a bucket: ketama-style consistent hashing (hashring) over shard NAMES, not
 * addresses, so moving a shard to a new address moves no bucket, and adding or removing one of
 * N shards moves about 1/N of the buckets. The ring hashes a bucket's group (its id before
 * `#`), so every limit of one rule for one descriptor lands on the same shard.
 */
export class ShardRing {
  private readonly ring: HashRing;
  readonly shards: readonly string[];
  /**
   * Owners of groups seen lately. hashring's own LRU cache costs more per hit than the request
   * path can spare (a linked-list update on every read); a plain map that starts over when it is
   * full costs one lookup, and a ring never changes its answers.
   */
  private readonly owners = new Map<string, string>();

  constructor(shardNames: readonly string[]) {
    if (shardNames.length === 0) throw new RangeError('a shard ring needs at least one shard');
    this.shards = Object.freeze([...shardNames].sort());
    // Its own cache stays minimal (0 is not accepted): ours above answers the repeated lookups.
    this.ring = new HashRing([...this.shards], 'md5', { 'max cache size': 1 });
  }

  shardFor(bucketKey: string): string {
    const group = bucketGroup(bucketKey);
    let owner = this.owners.get(group);
    if (owner === undefined) {
      owner = this.ring.get(group);
      if (this.owners.size >= MAX_REMEMBERED_OWNERS) this.owners.clear();
      this.owners.set(group, owner);
    }
    return owner;
  }
}

/** Groups whose owner is remembered; beyond it the map starts over (a flood of distinct keys only costs ring lookups). */
const MAX_REMEMBERED_OWNERS = 100_000;
