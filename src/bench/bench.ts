import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { h2loadAvailable, runH2load } from './h2load';
import type { LoadResult, LoadSpec } from './load-types';
import { killStartedProcesses, redisAvailable, runLoadInChild, startBaseline, startNoop, startRedisShards, startRingLimit, type RedisShards, type Running } from './processes';
import { combineRounds, lowerMedian, type MeasuredRow } from './rounds';
import { BENCH_RULES, WORKLOAD_CALLS, WORKLOAD_TITLES, type WorkloadName } from './workloads';

/** A count-bounded workload (distinct_1m) may run this long at most. */
const COUNTED_RUN_CAP_SECONDS = 600;

export interface BenchOptions {
  readonly seconds: number;
  /** Every measurement this many times, each round all servers in turn; rows report the median round. */
  readonly rounds: number;
  readonly workloads: readonly WorkloadName[];
  readonly connections: number;
  readonly streams: number;
  /** ringlimit worker processes sharing the port (WORKERS); 1 = one process. */
  readonly workers: number;
  /** Also a fixed-rate run per target at half the no-op's measured maximum, for latency. */
  readonly fixedRate: boolean;
  /** Also a run with one call in flight (one connection, one stream) per target, for latency alone. */
  readonly oneInFlight: boolean;
  /** Progress bars on stderr. */
  readonly progress: boolean;
  /** The environment the servers start from (PATH and the like). */
  readonly environment: NodeJS.ProcessEnv;
  /** Also the alternatives a Node user would write (rate-limiter-flexible, a Lua token bucket), on the same shards. */
  readonly baselines: boolean;
}

export interface BenchRow {
  readonly target: string;
  readonly workload: WorkloadName;
  readonly mode: 'closed-loop' | 'fixed-rate' | 'one-in-flight';
  readonly result: LoadResult;
  /** Throughput (closed loop) or p99 (fixed rate, one in flight) as a multiple of the no-op server's in the same round; the median over rounds. */
  readonly vsNoop: number | undefined;
  /** Rounds measured; the row's figures are from the round whose ratio is the median. */
  readonly rounds: number;
  /** The lowest and highest ratio of the rounds, when there were several. */
  readonly vsNoopRange: { readonly min: number; readonly max: number } | undefined;
  /** Redis round trips (script calls and reads) per answered call, from INFO commandstats. */
  readonly redisRoundTripsPerDecision?: number | undefined;
  /** CPU time the server's processes spent per answered call: what a call costs, whatever the generator took. */
  readonly serverCpuUsPerCall?: number | undefined;
  /** The server's resident memory at the end of the run. */
  readonly serverResidentMb?: number | undefined;
}

export interface BenchReport {
  readonly startedAt: string;
  readonly seconds: number;
  readonly rounds: number;
  readonly connections: number;
  readonly streams: number;
  readonly workers: number;
  readonly generators: Readonly<Record<string, string>>;
  readonly notes: readonly string[];
  readonly rows: readonly BenchRow[];
}

interface Target {
  readonly name: string;
  start(): Promise<Running>;
  readonly shards?: RedisShards | undefined;
}

/** Script calls and reads: what the engine sends per call (health pings and heartbeats excluded). */
function roundTrips(calls: Map<string, number>): number {
  return ['evalsha', 'eval', 'mget'].reduce((sum, command) => sum + (calls.get(command) ?? 0), 0);
}

/**
 * `ringlimit bench`: in one run, the same loads against a no-op gRPC server (the ceiling on this
 * machine), ringlimit on the memory store, and ringlimit on three Redis shards it spawns; each
 * figure also as a ratio to the no-op server's.
 */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const workDir = await mkdtemp(join(tmpdir(), 'ringlimit-bench-'));
  // A signal skips the orderly stop below: a bench stopped by `timeout` or `kill` would leave every server and redis-server it started running.
  const onSignal = (signal: NodeJS.Signals): void => {
    killStartedProcesses();
    rmSync(workDir, { recursive: true, force: true });
    process.exit(128 + constants.signals[signal]);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const configDir = join(workDir, 'rules');
  await mkdir(configDir);
  await writeFile(join(configDir, 'bench.yaml'), BENCH_RULES);
  const useH2load = h2loadAvailable();
  const notes: string[] = [];
  if (!useH2load) notes.push('h2load not installed (apt-get install -y nghttp2-client): every workload used the built-in h2-frames generator');
  const generators = Object.fromEntries(options.workloads.map((workload) => [workload, useH2load && workload === 'hot' ? 'h2load' : 'h2-frames']));
  let shards: RedisShards | undefined;
  if (redisAvailable()) shards = await startRedisShards(3);
  else notes.push('redis-server not installed: no Redis rows');
  const redisTargets = (redis: RedisShards): Target[] => {
    const shardList = redis.urls.map((url, index) => `shard-${index}=${url}`).join(',');
    const ringlimitOn = (workers: number): Target => ({
      name: workers === 1 ? 'redis x3' : `redis x3, ${workers} workers`,
      shards: redis,
      start: () => startRingLimit(options.environment, { CONFIG_DIR: configDir, REDIS_SHARDS: shardList }, workers),
    });
    const baselines: Target[] = options.baselines
      ? (['rate-limiter-flexible', 'lua-token-bucket'] as const).map((kind) => ({ name: kind, shards: redis, start: () => startBaseline(options.environment, kind, redis.urls) }))
      : [];
    return [ringlimitOn(1), ...(options.workers > 1 ? [ringlimitOn(options.workers)] : []), ...baselines];
  };
  const targets: Target[] = [
    { name: 'no-op', start: () => startNoop(options.environment) },
    { name: 'memory', start: () => startRingLimit(options.environment, { CONFIG_DIR: configDir }, 1) },
    ...(shards === undefined ? [] : redisTargets(shards)),
  ];
  const measured: MeasuredRow[] = [];
  const timedWorkloads = options.workloads.filter((workload) => WORKLOAD_CALLS[workload] === undefined);
  const latencyWorkload = options.oneInFlight ? (timedWorkloads.includes('hot') ? 'hot' : timedWorkloads[0]) : undefined;
  const noopCeiling = (workload: WorkloadName): number | undefined =>
    lowerMedian(
      measured.filter((row) => row.target === 'no-op' && row.workload === workload && row.mode === 'closed-loop'),
      (row) => row.result.requestsPerSecond,
    )?.result.requestsPerSecond;
  const running: { target: Target; server: Running }[] = [];
  try {
    for (const target of targets) running.push({ target, server: await target.start() });
    // Every measurement runs on each server in turn, so the servers it compares ran minutes
    // apart at most: this machine's speed drifts over a bench run, and ratios are the point.
    const everyRound = async (workload: WorkloadName, mode: BenchRow['mode'], ratePerSecond?: number): Promise<void> => {
      for (let round = 1; round <= options.rounds; round++) {
        for (const { target, server } of running) measured.push({ round, ...(await measure(target, server, workload, mode, ratePerSecond)) });
      }
    };
    for (const workload of options.workloads) await everyRound(workload, 'closed-loop');
    if (options.fixedRate) {
      for (const workload of timedWorkloads) {
        const ceiling = noopCeiling(workload);
        if (ceiling !== undefined && ceiling > 0) await everyRound(workload, 'fixed-rate', ceiling / 2);
      }
    }
    if (latencyWorkload !== undefined) await everyRound(latencyWorkload, 'one-in-flight');
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    for (const { server } of running) await server.stop();
    await shards?.stop();
    await rm(workDir, { recursive: true, force: true });
  }
  // The table lists each server's rows together, in the order they were measured.
  const targetOrder = targets.map((target) => target.name);
  const rows = combineRounds(measured);
  rows.sort((first, second) => targetOrder.indexOf(first.target) - targetOrder.indexOf(second.target));
  if (options.workers > 1) {
    for (const workload of options.workloads) {
      const one = rows.find((row) => row.target === 'redis x3' && row.workload === workload && row.mode === 'closed-loop');
      const many = rows.find((row) => row.target === `redis x3, ${options.workers} workers` && row.workload === workload && row.mode === 'closed-loop');
      if (one !== undefined && many !== undefined) {
        notes.push(`scaling, ${WORKLOAD_TITLES[workload]}: ${options.workers} workers ${(many.result.requestsPerSecond / one.result.requestsPerSecond).toFixed(2)}x one worker`);
      }
    }
  }
  return {
    startedAt: new Date().toISOString(),
    seconds: options.seconds,
    rounds: options.rounds,
    connections: options.connections,
    streams: options.streams,
    workers: options.workers,
    generators,
    notes,
    rows,
  };

  async function measure(target: Target, server: Running, workload: WorkloadName, mode: BenchRow['mode'], ratePerSecond?: number): Promise<Omit<MeasuredRow, 'round'>> {
    const calls = WORKLOAD_CALLS[workload];
    const alone = mode === 'one-in-flight';
    const spec: LoadSpec = {
      port: server.port,
      workload,
      seconds: calls === undefined ? options.seconds : COUNTED_RUN_CAP_SECONDS,
      calls,
      connections: alone ? 1 : options.connections,
      streams: alone ? 1 : options.streams,
      ratePerSecond,
    };
    const bar = options.progress ? new SingleBar({ format: `{target} | {workload} | {mode} [{bar}] {percentage}% | {calls} calls`, stream: process.stderr, clearOnComplete: true }, Presets.shades_classic) : undefined;
    bar?.start(100, 0, { target: target.name.padEnd(8), workload: WORKLOAD_TITLES[workload], mode, calls: 0 });
    const startedAt = Date.now();
    const onProgress = (sent: number): void => {
      const done = calls === undefined ? (Date.now() - startedAt) / 1000 / options.seconds : sent / calls;
      bar?.update(Math.min(100, Math.round(done * 100)), { calls: sent });
    };
    await target.shards?.resetStats();
    const usageBefore = server.usage();
    try {
      const result = generators[workload] === 'h2load' ? await runH2load(spec, workDir, onProgress) : await runLoadInChild(spec, onProgress);
      const usageAfter = server.usage();
      const answered = Math.max(1, result.requests);
      const trips = target.shards === undefined ? undefined : roundTrips(await target.shards.commandCalls()) / answered;
      return {
        target: target.name,
        workload,
        mode,
        result,
        redisRoundTripsPerDecision: trips,
        serverCpuUsPerCall: usageBefore === undefined || usageAfter === undefined ? undefined : ((usageAfter.cpuSeconds - usageBefore.cpuSeconds) * 1e6) / answered,
        serverResidentMb: usageAfter === undefined ? undefined : usageAfter.residentBytes / 2 ** 20,
      };
    } finally {
      bar?.stop();
    }
  }
}

const MODE_LABELS: Readonly<Record<BenchRow['mode'], (row: BenchRow) => string>> = {
  'closed-loop': () => 'closed loop',
  'fixed-rate': (row) => `fixed ${Math.round(row.result.requests / row.result.seconds)}/s`,
  'one-in-flight': () => '1 in flight',
};

/** The report as a table for people; the JSON line follows it for machines. */
export function formatReport(report: BenchReport): string[] {
  const header = ['target', 'workload', 'mode', 'generator', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors', 'late', 'redis RT/call', 'cpu µs/call', 'RSS MB', 'vs no-op'];
  const lines = report.rows.map((row) => [
    row.target,
    WORKLOAD_TITLES[row.workload],
    MODE_LABELS[row.mode](row),
    row.result.generator,
    Math.round(row.result.requestsPerSecond).toString(),
    row.result.p50Ms.toFixed(3),
    row.result.p99Ms.toFixed(3),
    row.result.p999Ms.toFixed(3),
    String(row.result.errors),
    String(row.result.lateAnswers),
    row.redisRoundTripsPerDecision === undefined ? '' : row.redisRoundTripsPerDecision.toFixed(3),
    row.serverCpuUsPerCall === undefined ? '' : row.serverCpuUsPerCall.toFixed(0),
    row.serverResidentMb === undefined ? '' : row.serverResidentMb.toFixed(0),
    row.vsNoop === undefined ? '' : `${row.vsNoop.toFixed(2)}×${row.mode === 'closed-loop' ? '' : ' p99'}${row.vsNoopRange === undefined ? '' : ` (${row.vsNoopRange.min.toFixed(2)}–${row.vsNoopRange.max.toFixed(2)})`}`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => (line[column] ?? '').length)));
  const format = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return [
    `ringlimit bench: ${report.seconds} s per run, ${report.rounds === 1 ? '1 round' : `${report.rounds} rounds (median shown, range in brackets)`}, ${report.connections} connections x ${report.streams} streams, ${report.workers} worker(s)`,
    ...report.notes.map((note) => `note: ${note}`),
    format(header),
    format(widths.map((width) => '-'.repeat(width))),
    ...lines.map(format),
  ];
}
