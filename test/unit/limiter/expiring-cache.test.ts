import assert from 'node:assert/strict';
import { ExpiringCache } from '../../../src/limiter/expiring-cache';

describe('ExpiringCache', () => {
  it('keeps only the entries of the last ttlMs when distinct keys stream through it', () => {
    const cache = new ExpiringCache<number>({ ttlMs: 2000, maxEntries: 100_000 });
    for (let index = 0; index < 50_000; index++) cache.set(`key-${index}`, index, index);
    // Written at 48,000 ms .. 49,999 ms: the 2,000 entries still fresh at the last write.
    assert.equal(cache.size, 2000);
    assert.deepEqual(cache.get('key-49999', 49_999), { found: true, value: 49_999 });
    assert.equal(cache.get('key-47999', 49_999).found, false);
  });

  it('drops the oldest beyond maxEntries, even when fresh', () => {
    const cache = new ExpiringCache<number>({ ttlMs: 60_000, maxEntries: 3 });
    for (const [index, key] of ['a', 'b', 'c', 'd'].entries()) cache.set(key, index, 1000);
    assert.equal(cache.size, 3);
    assert.equal(cache.get('a', 1000).found, false);
    assert.equal(cache.get('d', 1000).found, true);
  });
});
