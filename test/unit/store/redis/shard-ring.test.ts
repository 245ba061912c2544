import assert from 'node:assert/strict';
import { ShardRing } from '../../../../src/store/redis/shard-ring';

const IDS = Array.from({ length: 100_000 }, (_, index) => `api|user_id=u${index}|path=/p${index % 97}#minute`);

function movedFraction(before: ShardRing, after: ShardRing): number {
  let moved = 0;
  for (const id of IDS) if (before.shardFor(id) !== after.shardFor(id)) moved++;
  return moved / IDS.length;
}

describe('ShardRing', () => {
  it('spreads 100k buckets roughly evenly over 3 shards', () => {
    const ring = new ShardRing(['us-east', 'eu-west', 'ap-south']);
    const counts = new Map<string, number>();
    for (const id of IDS) counts.set(ring.shardFor(id), (counts.get(ring.shardFor(id)) ?? 0) + 1);
    for (const [shard, count] of counts) assert.ok(count > 0.2 * IDS.length && count < 0.47 * IDS.length, `${shard}: ${count}`);
  });

  it('moves about 1/N of 100k buckets when one shard is added to N', () => {
    const fraction = movedFraction(new ShardRing(['a', 'b', 'c']), new ShardRing(['a', 'b', 'c', 'd']));
    console.log(`      moved fraction adding a 4th shard: ${fraction.toFixed(4)} (ideal 0.25)`);
    assert.ok(fraction > 0.15 && fraction < 0.35, `moved ${fraction}`);
  });

  it('moves only the removed shard’s buckets, about 1/N, when one shard is removed', () => {
    const before = new ShardRing(['a', 'b', 'c', 'd']);
    const after = new ShardRing(['a', 'b', 'c']);
    const fraction = movedFraction(before, after);
    console.log(`      moved fraction removing 1 of 4 shards: ${fraction.toFixed(4)} (ideal 0.25)`);
    assert.ok(fraction > 0.15 && fraction < 0.35, `moved ${fraction}`);
    for (const id of IDS) if (before.shardFor(id) !== 'd') assert.equal(after.shardFor(id), before.shardFor(id));
  });

  it('hashes names, not addresses or list order', () => {
    const a = new ShardRing(['us-east', 'eu-west']);
    const b = new ShardRing(['eu-west', 'us-east']);
    for (const id of IDS.slice(0, 1000)) assert.equal(a.shardFor(id), b.shardFor(id));
  });

  it('keeps every limit of one rule for one descriptor on one shard', () => {
    const ring = new ShardRing(['a', 'b', 'c', 'd', 'e']);
    for (let index = 0; index < 1000; index++) {
      assert.equal(ring.shardFor(`d|user=u${index}#second`), ring.shardFor(`d|user=u${index}#day`));
    }
  });
});
