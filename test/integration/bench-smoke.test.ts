import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { processTree } from '../../src/bench/processes';
import { REPO_ROOT } from '../support/paths';

const CLI = join(REPO_ROOT, 'build', 'src', 'main.js');

/** The live descendants of `pid` with their command lines; none when one ended while they were read (the caller polls again). */
function descendants(pid: number): { pid: number; command: string }[] {
  try {
    return processTree(pid)
      .slice(1)
      .filter(isAlive)
      .map((child) => ({ pid: child, command: readFileSync(`/proc/${child}/cmdline`, 'utf8').replaceAll('\0', ' ') }));
  } catch {
    return [];
  }
}

function isAlive(pid: number): boolean {
  try {
    // The state follows the command name, which is in parentheses and may hold spaces.
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === false;
  } catch {
    return false;
  }
}

/** Not a benchmark: checks that `ringlimit bench` starts its servers, measures and prints its JSON line. */
describe('ringlimit bench (smoke run)', function () {
  this.timeout(60_000);

  it('measures the no-op server, the memory store, Redis shards and the two baselines, and prints a table and a JSON line', () => {
    const run = spawnSync(process.execPath, [CLI, 'bench', '--seconds', '1', '--workloads', 'hot,uniform_1k', '--connections', '1', '--streams', '4', '--no-fixed-rate'], {
      encoding: 'utf8',
      timeout: 55_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^ringlimit bench: 1 s per run/);
    const json = lines.find((line) => line.startsWith('BENCH_JSON '));
    assert.ok(json, run.stdout);
    const report = JSON.parse(json.slice('BENCH_JSON '.length)) as {
      rows: { target: string; workload: string; mode: string; vsNoop?: number; rounds: number; result: { requests: number; requestsPerSecond: number; p99Ms: number }; redisRoundTripsPerDecision?: number; serverCpuUsPerCall?: number; serverResidentMb?: number }[];
      generators: Record<string, string>;
    };
    const targets = new Set(report.rows.map((row) => row.target));
    assert.deepEqual([...targets], ['no-op', 'memory', 'redis x3', 'rate-limiter-flexible', 'lua-token-bucket']);
    for (const row of report.rows) {
      assert.ok(row.result.requests > 0, `${row.target}/${row.workload} answered calls`);
      assert.ok(row.result.p99Ms > 0);
      assert.ok(row.vsNoop !== undefined && row.vsNoop > 0);
      assert.equal(row.rounds, 1);
      assert.ok((row.serverCpuUsPerCall ?? 0) > 0, `${row.target}/${row.workload}: the server's CPU time per call, from /proc`);
      assert.ok((row.serverResidentMb ?? 0) > 10, `${row.target}/${row.workload}: the server's resident memory`);
    }
    for (const target of targets) {
      assert.deepEqual(
        report.rows.filter((row) => row.target === target).map((row) => `${row.workload} ${row.mode}`),
        ['hot closed-loop', 'uniform_1k closed-loop', 'hot one-in-flight'],
      );
    }
    assert.ok(report.rows.filter((row) => row.target !== 'no-op' && row.target !== 'memory').every((row) => (row.redisRoundTripsPerDecision ?? -1) >= 0));
    assert.equal(report.generators.uniform_1k, 'h2-frames', 'h2load cannot vary the body: many keys use the built-in generator');
    assert.match(run.stdout, /^target +workload +mode +generator +req\/s/m);
  });

  it('with --rounds, measures every server that many times and reports the median round with the range of its ratios', () => {
    const run = spawnSync(process.execPath, [CLI, 'bench', '--seconds', '1', '--rounds', '2', '--workloads', 'uniform_1k', '--connections', '1', '--streams', '4', '--no-fixed-rate', '--no-one-in-flight', '--no-baselines'], {
      encoding: 'utf8',
      timeout: 55_000,
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^ringlimit bench: 1 s per run, 2 rounds/);
    const json = run.stdout.split('\n').find((line) => line.startsWith('BENCH_JSON '));
    assert.ok(json, run.stdout);
    const report = JSON.parse(json.slice('BENCH_JSON '.length)) as { rounds: number; rows: { target: string; rounds: number; vsNoop?: number; vsNoopRange?: { min: number; max: number } }[] };
    assert.equal(report.rounds, 2);
    const memory = report.rows.find((row) => row.target === 'memory');
    assert.equal(memory?.rounds, 2);
    assert.ok(memory?.vsNoopRange !== undefined && memory.vsNoop !== undefined);
    assert.ok(memory.vsNoopRange.min <= memory.vsNoop && memory.vsNoop <= memory.vsNoopRange.max);
    assert.match(run.stdout, /^memory .* \(\d\.\d\d–\d\.\d\d\)$/m, 'the range is in the table');
  });

  /** Starts a bench, sends it `signal` mid-run, and returns how it ended and which of its processes outlived it. */
  async function interruptMidRun(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; survivors: { pid: number; command: string }[] }> {
    const bench = spawn(process.execPath, [CLI, 'bench', '--seconds', '3', '--workloads', 'uniform_1k', '--no-fixed-rate', '--no-one-in-flight', '--no-progress'], { stdio: 'ignore' });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => bench.once('exit', (code, by) => resolveExit({ code, signal: by })));
    const pid = bench.pid as number;
    let started: { pid: number; command: string }[] = [];
    // Mid-run: the servers are up once the load generator is (it starts after all of them).
    for (let waited = 0; waited < 40_000 && !started.some(({ command }) => command.includes('bench-load')); waited += 100) {
      await sleep(100);
      started = descendants(pid);
    }
    assert.ok(started.some(({ command }) => command.includes('bench-load')), `the run never got under way: ${JSON.stringify(started)}`);
    assert.ok(started.some(({ command }) => command.includes('redis-server')) && started.some(({ command }) => command.includes(' serve')), JSON.stringify(started));
    bench.kill(signal);
    const ended = await exited;
    for (let waited = 0; waited < 5_000 && started.some((child) => isAlive(child.pid)); waited += 100) await sleep(100);
    return { ...ended, survivors: started.filter((child) => isAlive(child.pid)) };
  }

  it('stops every server and redis-server it started when it is sent SIGTERM', async () => {
    const { code, survivors } = await interruptMidRun('SIGTERM');
    assert.equal(code, 143);
    assert.deepEqual(survivors, [], 'nothing the bench started outlives it');
  });

  it('leaves nothing running when it is killed with SIGKILL, which it cannot handle (setpriv --pdeathsig)', async function () {
    if (spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status !== 0) this.skip();
    const { signal, survivors } = await interruptMidRun('SIGKILL');
    assert.equal(signal, 'SIGKILL');
    assert.deepEqual(survivors, [], 'the kernel killed what the bench started');
  });

  it('refuses an unknown workload, naming the option', () => {
    const run = spawnSync(process.execPath, [CLI, 'bench', '--workloads', 'hot,lukewarm'], { encoding: 'utf8' });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /--workloads: unknown lukewarm/);
  });
});
