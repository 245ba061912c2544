import assert from 'node:assert/strict';
import { SettingsError } from '../../../src/core';
import { loadSettings } from '../../../src/settings/settings';

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
