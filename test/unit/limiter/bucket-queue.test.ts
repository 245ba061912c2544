import assert from 'node:assert/strict';
import { BucketQueue } from '../../../src/limiter/bucket-queue';

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A task that records when it starts and ends, with a turn of the event loop in between. */
const loggedTask = (log: string[], name: string) => async () => {
  log.push(`${name}:start`);
  await tick();
  log.push(`${name}:end`);
};

describe('BucketQueue', () => {
  it('runs tasks on the same key one after another, in arrival order', async () => {
    const queue = new BucketQueue();
    const log: string[] = [];
    await Promise.all([queue.run(['k'], loggedTask(log, 'a')), queue.run(['k'], loggedTask(log, 'b'))]);
    assert.deepEqual(log, ['a:start', 'a:end', 'b:start', 'b:end']);
    assert.equal(queue.activeKeys, 0);
  });

  it('runs tasks on different keys concurrently', async () => {
    const queue = new BucketQueue();
    const log: string[] = [];
    await Promise.all([queue.run(['x'], loggedTask(log, 'a')), queue.run(['y'], loggedTask(log, 'b'))]);
    assert.deepEqual(log.slice(0, 2), ['a:start', 'b:start']);
  });

  it('never deadlocks on overlapping key sets taken in opposite orders', async () => {
    const queue = new BucketQueue();
    const runs = Array.from({ length: 50 }, (_, index) => queue.run(index % 2 ? ['a', 'b'] : ['b', 'a'], async () => tick()));
    await Promise.all(runs);
    assert.equal(queue.activeKeys, 0);
  });

  it('releases the key when a task throws', async () => {
    const queue = new BucketQueue();
    await assert.rejects(queue.run(['k'], async () => Promise.reject(new Error('boom'))));
    assert.equal(await queue.run(['k'], async () => 'next'), 'next');
  });
});
