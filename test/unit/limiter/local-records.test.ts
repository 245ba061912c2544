import assert from 'node:assert/strict';
import { LocalRecords } from '../../../src/limiter/local-records';

const record = (version: number) => ({ version, state: { tokens: 5, updatedAtMs: 1000 } });

describe('LocalRecords', () => {
  it('takes a record as gone once the expiry our own write gave it has passed, so the next write expects no record', () => {
    const records = new LocalRecords({ ttlMs: 2000, maxEntries: 100 });
    records.written('k', record(4), 1200, 1000);
    assert.deepEqual(records.lookup('k', 1100).record, record(4));
    const later = records.lookup('k', 1300);
    assert.equal(later.found, true, 'still a copy: of no record');
    assert.equal(later.record, undefined);
  });

  it('keeps counting this instance as the only writer when the store re-creates a record that expired', () => {
    const records = new LocalRecords({ ttlMs: 10_000, maxEntries: 100 });
    let atMs = 1000;
    records.loaded('k', undefined, atMs);
    // Each time the store decides, the bucket expired in between and comes back as version 1.
    for (let step = 0; step < 3; step++) {
      atMs += 100;
      records.decidedByStore('k', { firstSeen: record(1), ownSteps: 1, record: record(1), conflicted: false, expireAtMs: atMs + 1 }, atMs);
    }
    const lookup = records.lookup('k', atMs + 100);
    assert.equal(lookup.soleWriter, true);
    assert.equal(lookup.record, undefined, 'expired on the shard');
  });

  it('stops counting this instance as the only writer when the version moved more than its own steps', () => {
    const records = new LocalRecords({ ttlMs: 10_000, maxEntries: 100 });
    records.loaded('k', record(1), 1000);
    for (const [index, version] of [2, 3, 4].entries()) {
      records.decidedByStore('k', { firstSeen: record(version), ownSteps: 1, record: record(version), conflicted: false, expireAtMs: undefined }, 1100 + index);
    }
    assert.equal(records.lookup('k', 1200).soleWriter, true);
    records.decidedByStore('k', { firstSeen: record(7), ownSteps: 1, record: record(7), conflicted: false, expireAtMs: undefined }, 1300);
    assert.equal(records.lookup('k', 1301).soleWriter, false);
  });
});
