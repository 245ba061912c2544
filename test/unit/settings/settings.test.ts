import assert from 'node:assert/strict';
import { SettingsError } from '../../../src/core';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSettings, parseShardList } from '../../../src/settings/settings';
import { ShardListFile } from '../../../src/settings/shard-list-file';
import { withTempDir } from '../../support/paths';

describe('settings', () => {
  it('defaults to gRPC 8081, HTTP 8080, ./config, info, headers off', () => {
    const settings = loadSettings({});
    assert.equal(settings.grpcPort, 8081);
    assert.equal(settings.httpPort, 8080);
    assert.equal(settings.configDir, './config');
    assert.equal(settings.logLevel, 'info');
    assert.equal(settings.responseHeaders, undefined);
    assert.equal(settings.shadowMode, false);
  });

  it('reads the environment, and flags win over it', () => {
    const env = { GRPC_PORT: '9001', HTTP_PORT: '9002', CONFIG_DIR: '/etc/rl', LOG_LEVEL: 'WARN' };
    assert.deepEqual(
      (({ grpcPort, httpPort, configDir, logLevel }) => ({ grpcPort, httpPort, configDir, logLevel }))(loadSettings(env)),
      { grpcPort: 9001, httpPort: 9002, configDir: '/etc/rl', logLevel: 'warn' },
    );
    const flagged = loadSettings(env, { grpcPort: '7001', configDir: '/tmp/rules', logLevel: 'debug' });
    assert.equal(flagged.grpcPort, 7001);
    assert.equal(flagged.configDir, '/tmp/rules');
    assert.equal(flagged.logLevel, 'debug');
  });

  it("accepts envoyproxy/ratelimit's RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/RUNTIME_APPDIRECTORY as the config directory", () => {
    assert.equal(loadSettings({ RUNTIME_ROOT: '/data', RUNTIME_SUBDIRECTORY: 'ratelimit' }).configDir, '/data/ratelimit/config');
    assert.equal(loadSettings({ RUNTIME_ROOT: '/data', RUNTIME_APPDIRECTORY: 'rules' }).configDir, '/data/rules');
    assert.equal(loadSettings({ RUNTIME_ROOT: '/data', CONFIG_DIR: '/wins' }).configDir, '/wins');
  });

  it('enables RateLimit-* headers with the reference names and lets them be renamed', () => {
    assert.deepEqual(loadSettings({ LIMIT_RESPONSE_HEADERS_ENABLED: 'true' }).responseHeaders, {
      limit: 'RateLimit-Limit',
      remaining: 'RateLimit-Remaining',
      reset: 'RateLimit-Reset',
    });
    assert.equal(loadSettings({ LIMIT_RESPONSE_HEADERS_ENABLED: '1', LIMIT_RESET_HEADER: 'X-Reset' }).responseHeaders?.reset, 'X-Reset');
  });

  const invalid: [Record<string, string>, string][] = [
    [{ GRPC_PORT: 'eighty' }, 'GRPC_PORT'],
    [{ GRPC_PORT: '70000' }, 'GRPC_PORT'],
    [{ HTTP_PORT: '-1' }, 'HTTP_PORT'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ SHADOW_MODE: 'maybe' }, 'SHADOW_MODE'],
    [{ MEMORY_STORE_MAX_BUCKETS: '0' }, 'MEMORY_STORE_MAX_BUCKETS'],
  ];
  for (const [env, setting] of invalid) {
    it(`refuses ${setting}=${Object.values(env)[0]} with an error naming it`, () => {
      assert.throws(() => loadSettings(env), (error: unknown) => error instanceof SettingsError && error.setting === setting);
    });
  }

  it('names the flag, not the variable, when a flag is bad', () => {
    assert.throws(() => loadSettings({}, { grpcPort: 'x' }), (error: unknown) => error instanceof SettingsError && error.setting === '--grpc-port');
  });
});

describe('shard lists', () => {
  it('reads REDIS_SHARDS and REDIS_URL, and refuses bad entries naming the variable', () => {
    assert.deepEqual(loadSettings({ REDIS_SHARDS: 'us-east=redis://a:6379, eu-west=rediss://u:p@b:6380' }).redisShards, [
      { name: 'us-east', url: 'redis://a:6379' },
      { name: 'eu-west', url: 'rediss://u:p@b:6380' },
    ]);
    assert.deepEqual(loadSettings({ REDIS_URL: 'redis://a:6379' }).redisShards, [{ name: 'default', url: 'redis://a:6379' }]);
    assert.throws(() => loadSettings({ REDIS_SHARDS: 'a=redis://x,a=redis://y' }), /named twice/);
    assert.throws(() => loadSettings({ REDIS_SHARDS: 'a=http://x' }), (error: unknown) => error instanceof SettingsError && error.setting === 'REDIS_SHARDS[a]');
  });

  it('takes the list from REDIS_SHARDS_FILE instead, but not both', () => {
    const settings = loadSettings({ REDIS_SHARDS_FILE: '/etc/ringlimit/shards' });
    assert.equal(settings.redisShardsFile, '/etc/ringlimit/shards');
    assert.deepEqual(settings.redisShards, []);
    assert.equal(settings.shardHandoffMs, 86_400_000);
    assert.throws(() => loadSettings({ REDIS_SHARDS_FILE: '/f', REDIS_URL: 'redis://a' }), (error: unknown) => error instanceof SettingsError && error.setting === 'REDIS_SHARDS_FILE');
  });

  it('parses a file of one shard per line with comments and blank lines', () => {
    assert.deepEqual(parseShardList('file', '# shards\nus-east=redis://a:6379\n\neu-west=redis://b:6379  # second region\n'), [
      { name: 'us-east', url: 'redis://a:6379' },
      { name: 'eu-west', url: 'redis://b:6379' },
    ]);
    assert.throws(() => parseShardList('file', '# nothing\n'), /at least one/);
  });

  it('answers a shard list file only when its text changed since the list last accepted', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'shards');
      const file = new ShardListFile(path);
      await assert.rejects(file.readIfChanged(), (error: unknown) => error instanceof SettingsError && error.message.includes(path));
      await writeFile(path, 'a=redis://a:1\n');
      const first = await file.readIfChanged();
      assert.deepEqual(first?.shards, [{ name: 'a', url: 'redis://a:1' }]);
      assert.ok((await file.readIfChanged()) !== undefined, 'not accepted yet: still answered');
      first?.accept();
      assert.equal(await file.readIfChanged(), undefined);
      await writeFile(path, 'a=redis://a:1\nb=nonsense\n');
      await assert.rejects(file.readIfChanged(), /REDIS_SHARDS_FILE/);
    });
  });
});
