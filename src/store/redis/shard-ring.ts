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

  constructor(shardNames: readonly string[]) {
    if (shardNames.length === 0) throw new RangeError('a shard ring needs at least one shard');
    this.shards = Object.freeze([...shardNames].sort());
    this.ring = new HashRing([...this.shards], 'md5', { 'max cache size': 10_000 });
  }

  shardFor(bucketKey: string): string {
    return this.ring.get(bucketGroup(bucketKey));
  }
}
