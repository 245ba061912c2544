import assert from 'node:assert/strict';
import fc from 'fast-check';
import { overrideBucketKey, ruleBucketKey } from '../../../src/bucket/bucket-key';

describe('bucket key', () => {
  it('names the domain, each entry and the unit', () => {
    assert.equal(
      ruleBucketKey('api', [{ key: 'user_id', value: 'alice' }, { key: 'path', value: '/chat' }], 'minute'),
      'api|user_id=alice|path=/chat#minute',
    );
  });

  it('puts the override rate in the id so an override never shares a configured bucket', () => {
    const entries = [{ key: 'key2', value: 'v' }];
    assert.notEqual(overrideBucketKey('d', entries, { requestsPerUnit: 6, unit: 'minute' }), ruleBucketKey('d', entries, 'minute'));
    assert.notEqual(
      overrideBucketKey('d', entries, { requestsPerUnit: 6, unit: 'minute' }),
      overrideBucketKey('d', entries, { requestsPerUnit: 7, unit: 'minute' }),
    );
  });

  it('never gives two different descriptors the same id, whatever characters they hold', () => {
    const entry = fc.record({ key: fc.string({ maxLength: 6 }), value: fc.string({ maxLength: 6 }) });
    const descriptor = fc.record({ domain: fc.string({ maxLength: 4 }), entries: fc.array(entry, { maxLength: 3 }) });
    fc.assert(
      fc.property(descriptor, descriptor, (a, b) => {
        fc.pre(JSON.stringify(a) !== JSON.stringify(b));
        assert.notEqual(ruleBucketKey(a.domain, a.entries, 'second'), ruleBucketKey(b.domain, b.entries, 'second'));
      }),
      { numRuns: 1000 },
    );
  });
});
