import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectShards } from '../../../../src/store/redis/connect-shards';
import { RedisShardStore } from '../../../../src/store/redis/redis-shard-store';
import { FakeClock } from '../../../support/fake-clock';
import { makeTempDir } from '../../../support/paths';
import { freePort, RedisServer } from '../../../support/redis-server';

const silent = pino({ level: 'silent' });

describe('a rediss:// shard with a self-signed certificate', function () {
  this.timeout(20_000);
  let dir = '';
  let server: RedisServer;
  let port = 0;

  before(async () => {
    dir = await makeTempDir();
    const made = spawnSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
    assert.equal(made.status, 0, `openssl failed: ${String(made.stderr)}`);
    port = await freePort();
    server = await RedisServer.start({
      args: ['--port', '0', '--tls-port', String(port), '--tls-cert-file', join(dir, 'cert.pem'), '--tls-key-file', join(dir, 'key.pem'), '--tls-auth-clients', 'no'],
    });
  });
  after(async () => {
    await server.kill();
    await rm(dir, { recursive: true, force: true });
  });

  const storeFor = async (tlsCaFile: string | undefined) => {
    const clients = await connectShards({ shards: [{ name: 'tls', url: `rediss://127.0.0.1:${port}` }], commandTimeoutMs: 1000, tlsCaFile, logger: silent });
    return new RedisShardStore({ shards: clients, clock: new FakeClock(Date.now()) });
  };

  it('connects and commits when REDIS_TLS_CA_FILE trusts the certificate', async () => {
    const store = await storeFor(join(dir, 'cert.pem'));
    try {
      await store.ping();
      const limit = { requestsPerUnit: 5, unit: 'minute' as const, capacity: 5, algorithm: 'token_bucket' as const };
      const [outcome] = await store.commit([{ writes: [], requests: [{ hits: 2, limits: [{ key: 'tls|k=v#minute', limit }] }] }], Date.now());
      assert.ok(outcome?.kind === 'decided');
      assert.equal(outcome.results[0]?.[0]?.remaining, 3);
    } finally {
      await store.close();
    }
  });

  it('does not answer when the certificate is not trusted', async () => {
    const store = await storeFor(undefined);
    try {
      await assert.rejects(store.ping(), (error: unknown) => (error as { code?: string }).code === 'ERR_STORE_UNAVAILABLE');
    } finally {
      await store.close();
    }
  });
});
