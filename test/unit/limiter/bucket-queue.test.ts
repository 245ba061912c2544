import assert from 'node:assert/strict';
import { BucketQueue } from '../../../src/limiter/bucket-queue';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('BucketQueue', () => {
  it('runs tasks on the same key one after another, in arrival order', async () => {
    const queue = new BucketQueue();
    const log: string[] = [];
    const task = (name: string) => async () => {
      log.push(`${name}:start`);
      await tick();
      log.push(`${name}:end`);
    };
    await Promise.all([queue.run(['k'], task('a')), queue.run(['k'], task('b'))]);
    assert.deepEqual(log, ['a:start', 'a:end', 'b:start', 'b:end']);
    assert.equal(queue.activeKeys, 0);
  });

  it('runs tasks on different keys concurrently', async () => {
    const queue = new BucketQueue();
    const log: string[] = [];
    const task = (name: string) => async () => {
      log.push(`${name}:start`);
      await tick();
      log.push(`${name}:end`);
    };
    await Promise.all([queue.run(['x'], task('a')), queue.run(['y'], task('b'))]);
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
