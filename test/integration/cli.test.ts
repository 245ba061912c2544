import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { d } from '../support/rls-client';
import { RlsTestClient } from '../support/rls-client';
import { fixturePath, REPO_ROOT, withTempDir } from '../support/paths';
import { Code } from '../support/status';

const CLI = join(REPO_ROOT, 'build', 'src', 'main.js');

interface LogLine {
  msg?: string;
  port?: number;
  level?: number;
}

/** Starts `ringlimit serve` as a real process and resolves once it logs its gRPC port. */
function startServe(args: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number; logs: LogLine[] }> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { env: { ...process.env, HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const logs: LogLine[] = [];
  return new Promise((resolveStart, reject) => {
    child.on('exit', (code) => reject(new Error(`serve exited early with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const entry = JSON.parse(line) as LogLine;
      logs.push(entry);
      if (entry.msg === 'gRPC server listening' && entry.port !== undefined) resolveStart({ child, port: entry.port, logs });
    });
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolveExit) => child.on('exit', (code) => resolveExit(code)));
}

describe('ringlimit CLI', () => {
  it('serve answers ShouldRateLimit, logs JSON, and exits 0 on SIGTERM', async () => {
    const { child, port, logs } = await startServe(['--grpc-host', '127.0.0.1', '--grpc-port', '0', '--config-dir', fixturePath('rules')]);
    const client = new RlsTestClient(port);
    try {
      const response = await client.call('test-domain', [d(['key2', 'cli'])]);
      assert.equal(response.overall_code, Code.OK);
      assert.equal(response.statuses[0]?.limit_remaining, 19);
    } finally {
      client.close();
    }
    child.removeAllListeners('exit');
    const exited = exitOf(child);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(logs.some((entry) => entry.msg === 'rate limit configuration loaded'));
    assert.ok(logs.some((entry) => entry.msg === 'ringlimit stopped'));
  });

  it('serve reads GRPC_PORT and CONFIG_DIR from the environment', async () => {
    const { child, port } = await startServe([], { GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', CONFIG_DIR: fixturePath('rules'), LOG_LEVEL: 'info' });
    assert.ok(port > 0);
    child.removeAllListeners('exit');
    const exited = exitOf(child);
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  });

  it('serve refuses a bad setting at start with a message naming it', () => {
    const result = spawnSync(process.execPath, [CLI, 'serve'], { env: { ...process.env, GRPC_PORT: 'eighty' }, encoding: 'utf8' });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /GRPC_PORT: expected a port number/);
  });

  it('check prints every domain and rule of a valid directory and exits 0', () => {
    const result = spawnSync(process.execPath, [CLI, 'check', fixturePath('rules')], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^domain test-domain \(.*basic\.yaml\)$/m);
    assert.match(result.stdout, /test-domain\.key1_value1\.subkey1: unit=SECOND requests_per_unit=5/);
    assert.match(result.stdout, /test-domain\.key6: unlimited/);
    assert.match(result.stdout, /^ok: 4 domain\(s\) in 4 file\(s\)$/m);
  });

  it('check exits 1 and names file, line, path and reason of the first error', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'bad.yaml'), 'domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: fortnight\n');
      const result = spawnSync(process.execPath, [CLI, 'check', dir], { encoding: 'utf8' });
      assert.equal(result.status, 1);
      assert.match(result.stderr, /bad\.yaml:5: descriptors\[0\]\.rate_limit\.unit: invalid rate limit unit 'fortnight'/);
    });
  });

  it('check exits 1 for a directory that does not exist', () => {
    const result = spawnSync(process.execPath, [CLI, 'check', '/nonexistent/ringlimit-rules'], { encoding: 'utf8' });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /cannot read the config directory/);
  });
});
