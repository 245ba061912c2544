#!/usr/bin/env node
import cluster from 'node:cluster';
import { Command } from 'commander';
import { createApp } from './app';
import { startBaselineServer } from './bench/baseline-servers';
import { formatReport, runBench } from './bench/bench';
import { runFramesLoad } from './bench/frames-load';
import type { LoadMessage, LoadSpec } from './bench/load-types';
import { startNoopServer } from './bench/noop-server';
import { DEFAULT_WORKLOADS, WORKLOAD_NAMES, type WorkloadName } from './bench/workloads';
import { checkConfigDir } from './cli/check-config';
import { errorMessage } from './core';
import { loadSettings, type SettingsFlags } from './settings/settings';

/** The process entry: the only module that reads process.env, handles signals or exits. */
const program = new Command('ringlimit')
  .description('Global rate-limit service for Envoy (RLS v3)')
  .version(require('../../package.json').version as string);

program
  .command('serve', { isDefault: true })
  .description('serve RLS v3 over gRPC (memory store unless a store is configured)')
  .option('--grpc-host <host>', 'gRPC listen address (GRPC_HOST)')
  .option('--grpc-port <port>', 'gRPC port (GRPC_PORT, default 8081)')
  .option('--http-port <port>', 'HTTP port (HTTP_PORT, default 8080)')
  .option('--config-dir <dir>', 'rule directory (CONFIG_DIR, default ./config)')
  .option('--log-level <level>', 'trace|debug|info|warn|error|fatal|silent (LOG_LEVEL, default info)')
  .action(async (flags: SettingsFlags) => {
    const settings = loadSettings(process.env, flags);
    if (settings.workers > 1 && cluster.isPrimary) {
      superviseWorkers(settings.workers);
      return;
    }
    const app = createApp(settings);
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      app.logger.info({ signal }, 'shutting down');
      app.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          app.logger.error({ err: errorMessage(error) }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      app.logger.info({ signal: 'SIGHUP' }, 'reloading rules and shard list');
      void app.reload();
    });
    await app.start();
  });

program
  .command('bench')
  .description('measure ringlimit against a no-op gRPC server in one run (memory store, 3 Redis shards); prints a table and a JSON line')
  .option('--seconds <n>', 'length of each run', '10')
  .option('--rounds <n>', 'measure everything this many times, servers in turn each round; show the median round', '1')
  .option('--workloads <list>', `comma-separated: ${WORKLOAD_NAMES.join(', ')}`, DEFAULT_WORKLOADS.join(','))
  .option('--connections <n>', 'HTTP/2 connections', '4')
  .option('--streams <n>', 'calls in flight per connection', '16')
  .option('--no-fixed-rate', 'skip the fixed-rate latency runs')
  .option('--no-one-in-flight', 'skip the runs with one call in flight')
  .option('--no-baselines', 'skip the rate-limiter-flexible and Lua token-bucket servers')
  .option('--no-progress', 'no progress bars')
  .action(async (flags: { seconds: string; rounds: string; workloads: string; connections: string; streams: string; fixedRate: boolean; oneInFlight: boolean; baselines: boolean; progress: boolean }) => {
    const workloads = flags.workloads.split(',').map((name) => name.trim());
    const unknown = workloads.filter((name) => !(WORKLOAD_NAMES as readonly string[]).includes(name));
    if (unknown.length > 0) throw new Error(`--workloads: unknown ${unknown.join(', ')}; choose from ${WORKLOAD_NAMES.join(', ')}`);
    const report = await runBench({
      seconds: positive('--seconds', flags.seconds),
      rounds: positive('--rounds', flags.rounds),
      workloads: workloads as WorkloadName[],
      connections: positive('--connections', flags.connections),
      streams: positive('--streams', flags.streams),
      workers: positive('WORKERS', process.env.WORKERS ?? '1'),
      fixedRate: flags.fixedRate,
      oneInFlight: flags.oneInFlight,
      progress: flags.progress && process.stderr.isTTY === true,
      environment: process.env,
      baselines: flags.baselines,
    });
    for (const line of formatReport(report)) console.log(line);
    console.log(`BENCH_JSON ${JSON.stringify(report)}`);
  });

program
  .command('bench-noop', { hidden: true })
  .description("the bench's no-op gRPC server")
  .action(async () => {
    const { port, server } = await startNoopServer(0);
    console.log(JSON.stringify({ msg: 'no-op server listening', port }));
    process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
  });

program
  .command('bench-baseline', { hidden: true })
  .description("the bench's baseline servers")
  .argument('<kind>', 'rate-limiter-flexible or lua-token-bucket')
  .argument('<shards>', 'comma-separated redis:// URLs')
  .action(async (kind: string, shards: string) => {
    if (kind !== 'rate-limiter-flexible' && kind !== 'lua-token-bucket') throw new Error(`unknown baseline ${kind}`);
    const { port, stop } = await startBaselineServer(kind, shards.split(','));
    console.log(JSON.stringify({ msg: 'baseline server listening', port }));
    process.on('SIGTERM', () => void stop().then(() => process.exit(0)));
  });

program
  .command('bench-load', { hidden: true })
  .description("the bench's load generator (driven over IPC)")
  .action(() => {
    process.once('message', (spec: LoadSpec) => {
      const send = (message: LoadMessage): void => void process.send?.(message);
      runFramesLoad(spec, (sent) => send({ kind: 'progress', sent })).then(
        (result) => send({ kind: 'done', result }),
        (error: unknown) => send({ kind: 'failed', error: errorMessage(error) }),
      );
    });
  });

program
  .command('check')
  .description('validate a rule directory and print its rules; exits 1 on the first error')
  .argument('<dir>', 'the rule directory')
  .action(async (dir: string) => {
    const report = await checkConfigDir(dir);
    for (const line of report.lines) (report.ok ? console.log : console.error)(line);
    process.exitCode = report.ok ? 0 : 1;
  });

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}: expected a positive number, got '${text}'`);
  return value;
}

/** WORKERS > 1: this process forks the workers, restarts none, and passes SIGTERM/SIGINT on; it exits when they have. */
function superviseWorkers(count: number): void {
  for (let index = 0; index < count; index++) cluster.fork();
  let stopping = false;
  const stopAll = (signal: NodeJS.Signals): void => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  process.on('SIGTERM', () => stopAll('SIGTERM'));
  process.on('SIGINT', () => stopAll('SIGINT'));
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });
  cluster.on('exit', (worker, code) => {
    if (!stopping) console.error(JSON.stringify({ level: 50, msg: 'worker exited', pid: worker.process.pid, code }));
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(stopping ? 0 : 1);
  });
}

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`ringlimit: ${errorMessage(error)}`);
  process.exit(1);
});
