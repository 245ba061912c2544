import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSettings } from '../../src/settings/settings';
import { makeTempDir } from '../support/paths';
import { RedisServer } from '../support/redis-server';
import { RingLimitProcess } from '../support/ringlimit-process';
import { d, RlsTestClient } from '../support/rls-client';
import { Code } from '../support/status';
import { httpCall, startTestServer } from '../support/test-server';

const RULES = { 'secret.yaml': 'domain: secret\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 5}\n' };

describe('secrets from files, and secrets kept out of the logs', function () {
  this.timeout(30_000);
  let dir = '';
  before(async () => {
    dir = await makeTempDir();
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('takes the admin token from ADMIN_TOKEN_FILE (a mounted secret, trailing newline and all)', async () => {
    const file = join(dir, 'admin-token');
    await writeFile(file, 'token-from-file\n');
    const server = await startTestServer(RULES, { ADMIN_TOKEN_FILE: file });
    try {
      assert.equal((await server.http('GET', '/admin/overrides', undefined, { authorization: 'Bearer token-from-file' })).status, 200);
      assert.equal((await server.http('GET', '/admin/overrides', undefined, { authorization: 'Bearer token-from' })).status, 403);
    } finally {
      await server.stop();
    }
    assert.throws(() => loadSettings({ ADMIN_TOKEN: 'a', ADMIN_TOKEN_FILE: file }), /ADMIN_TOKEN_FILE/);
    const empty = join(dir, 'empty-token');
    await writeFile(empty, '\n');
    await assert.rejects(startTestServer(RULES, { ADMIN_TOKEN_FILE: empty }), /ADMIN_TOKEN_FILE.*empty/);
  });

  it('takes the Redis password from REDIS_PASSWORD_FILE for shards whose URL has none', async () => {
    const redis = await RedisServer.start({ args: ['--requirepass', 'shard-secret'] });
    const good = join(dir, 'redis-password');
    const wrong = join(dir, 'wrong-password');
    await writeFile(good, 'shard-secret\n');
    await writeFile(wrong, 'not-it\n');
    try {
      const server = await startTestServer(RULES, { REDIS_URL: redis.url(), REDIS_PASSWORD_FILE: good });
      try {
        server.clock.set(Date.now());
        assert.equal((await server.client.call('secret', [d(['user', 'p'])])).overall_code, Code.OK);
        assert.equal((await server.http('GET', '/healthz')).status, 200);
      } finally {
        await server.stop();
      }
      await assert.rejects(startTestServer(RULES, { REDIS_URL: redis.url(), REDIS_PASSWORD_FILE: wrong }), /default/);
    } finally {
      await redis.kill();
    }
  });

  it('never logs the admin token, a wrong token, or a Redis password', async () => {
    const redis = await RedisServer.start({ args: ['--requirepass', 'pw-in-url'] });
    const configDir = await makeTempDir();
    await writeFile(join(configDir, 'secret.yaml'), RULES['secret.yaml']);
    try {
      const { process: instance, port } = await RingLimitProcess.start({ CONFIG_DIR: configDir, ADMIN_TOKEN: 'admin-secret-value', REDIS_URL: redis.url(':pw-in-url@'), LOG_LEVEL: 'debug' });
      const httpPort = (await instance.waitForLog('HTTP server listening', 0)).port as number;
      for (const token of ['admin-secret-value', 'guessed-token']) await httpCall(httpPort, 'GET', '/admin/overrides', undefined, { authorization: `Bearer ${token}` });
      const client = new RlsTestClient(port);
      await client.call('secret', [d(['user', 'logged'])]);
      client.close();
      instance.hangUp();
      await instance.waitForLog('reloading rules and shard list', 0);
      assert.equal((await instance.stop()).code, 0);
      const logged = JSON.stringify(instance.logs);
      for (const secret of ['admin-secret-value', 'guessed-token', 'pw-in-url']) assert.ok(!logged.includes(secret), `${secret} appears in the logs`);
      assert.ok(instance.logs.length > 3, 'the process did log');
    } finally {
      await redis.kill();
      await rm(configDir, { recursive: true, force: true });
    }
  });
});
