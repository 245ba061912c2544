import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WriteOrderedMap } from '../../../src/core';

describe('WriteOrderedMap', () => {
  it('behaves like a Map kept in last-write order, whatever the operations', () => {
    const operation = fc.oneof(
      fc.record({ op: fc.constant('set' as const), key: fc.integer({ min: 0, max: 20 }), value: fc.integer() }),
      fc.record({ op: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ op: fc.constant('shift' as const) }),
      fc.record({ op: fc.constant('oldest' as const) }),
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 3000 }), (operations) => {
        const subject = new WriteOrderedMap<number, number>();
        const model = new Map<number, number>();
        for (const step of operations) {
          if (step.op === 'set') {
            subject.set(step.key, step.value);
            model.delete(step.key);
            model.set(step.key, step.value);
          } else if (step.op === 'delete') {
            assert.equal(subject.delete(step.key), model.delete(step.key));
          } else if (step.op === 'oldest') {
            const oldest = model.values().next();
            assert.equal(subject.oldestValue(), oldest.done === true ? undefined : oldest.value);
          } else {
            const oldest = model.entries().next();
            if (oldest.done !== true) model.delete(oldest.value[0]);
            assert.deepEqual(subject.shift(), oldest.done === true ? undefined : oldest.value);
          }
          assert.equal(subject.size, model.size);
        }
        assert.deepEqual([...subject.oldestFirst()], [...model.entries()]);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps evicting the oldest entry through 300,000 writes at 100,000 entries', () => {
    const map = new WriteOrderedMap<string, number>();
    for (let index = 0; index < 100_000; index++) map.set(`k${index}`, index);
    for (let index = 100_000; index < 400_000; index++) {
      map.set(`k${index}`, index);
      map.shift();
    }
    assert.equal(map.size, 100_000);
    assert.deepEqual(map.shift(), ['k300000', 300_000]);
  });
});
