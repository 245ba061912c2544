import assert from 'node:assert/strict';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MemoryBucketStore } from '../../src/store/memory-store';
import { FakeClock } from '../support/fake-clock';
import { d, RlsTestClient } from '../support/rls-client';
import { fixtureText } from '../support/rules';
import { Code } from '../support/status';
import { delegatingStore } from '../support/store-doubles';
import { startTestServer } from '../support/test-server';

describe('graceful stop', () => {
  it('finishes calls in flight, then refuses new ones', async () => {
    const memory = new MemoryBucketStore({ clock: new FakeClock(), maxBuckets: 100 });
    let releaseCommit: () => void = () => {};
    let commitStarted: () => void = () => {};
    const started = new Promise<void>((resolve) => {
      commitStarted = resolve;
    });
    const store = delegatingStore(memory, {
      commit: async (groups, nowMs) => {
        commitStarted();
        await new Promise<void>((resolve) => {
          releaseCommit = resolve;
        });
        return memory.commit(groups, nowMs);
      },
    });
    const server = await startTestServer({ 'basic.yaml': fixtureText('basic.yaml') }, {}, { store });
    const inFlight = server.client.call('test-domain', [d(['key2', 'draining'])]);
    await started;
    const stopped = server.app.stop();
    const lateClient = new RlsTestClient(server.port);
    const late = lateClient.call('test-domain', [d(['key2', 'late'])]).then(
      () => 'answered',
      (error: { code: number }) => error.code,
    );
    releaseCommit();
    const response = await inFlight;
    assert.equal(response.overall_code, Code.OK, 'the call in flight got its answer');
    await stopped;
    assert.equal(await late, GrpcStatus.UNAVAILABLE, 'a call after stop is refused');
    lateClient.close();
    await server.stop();
  });
});
