import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MemoryBucketStore } from '../../src/store/memory-store';
import { FakeClock } from '../support/fake-clock';
import { makeTempDir } from '../support/paths';
import { RingLimitProcess } from '../support/ringlimit-process';
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

  it('exits on SIGTERM when nothing reads its log any more', async function () {
    this.timeout(20_000);
    const configDir = await makeTempDir();
    await writeFile(join(configDir, 'basic.yaml'), fixtureText('basic.yaml'));
    const { process: instance } = await RingLimitProcess.start({ CONFIG_DIR: configDir });
    try {
      instance.closeLogPipe();
      // Its "shutting down" line is the first to meet the closed pipe; it used to retry that write forever.
      const stopped = await Promise.race([instance.stop(), sleep(10_000).then(() => 'still running')]);
      if (stopped === 'still running') instance.kill();
      assert.deepEqual(stopped, { code: 0, engine: undefined }, 'exited by itself, with 0');
    } finally {
      await rm(configDir, { recursive: true, force: true });
    }
  });
});
