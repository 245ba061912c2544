import { fork, spawn, spawnSync, type ChildProcess, type ForkOptions, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import type { LoadMessage, LoadResult, LoadSpec } from './load-types';

/** Every process the bench started that has not exited yet. */
const liveChildren = new Set<ChildProcess>();

/** Counts `child` among the bench's processes until it exits. */
function tracked<T extends ChildProcess>(child: T): T {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

/**
 * `read()` on the first call, its value after. main.js loads this module for every command
 * (`serve` and each of its workers too), so what only the bench needs is asked of the machine
 * when the bench first needs it, not at load: each of these is a process start (3–4 ms).
 */
function onFirstUse<T>(read: () => T): () => T {
  let known: { value: T } | undefined;
  return () => (known ??= { value: read() }).value;
}

/**
 * setpriv (util-linux) starts a command with PR_SET_PDEATHSIG: the kernel kills it when the
 * bench dies, even by SIGKILL, which no handler of the bench sees. Without setpriv, a killed
 * bench leaves its servers and redis-servers running.
 */
const dieWithBench = onFirstUse(() => (spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0 ? ['--pdeathsig', 'KILL', '--'] : undefined));

/** Spawns `command` as one of the bench's processes: tracked, and killed with the bench where setpriv is installed. */
export function spawnStarted(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const setpriv = dieWithBench();
  const child = setpriv === undefined ? spawn(command, args, options) : spawn('setpriv', [...setpriv, command, ...args], options);
  return tracked(child);
}

/** Forks `node build/src/main.js <args>` (with an IPC channel) the same way. */
function forkStarted(args: readonly string[], options: ForkOptions): ChildProcess {
  const setpriv = dieWithBench();
  const dyingWith = setpriv === undefined ? {} : { execPath: 'setpriv', execArgv: [...setpriv, process.execPath, ...process.execArgv] };
  return tracked(fork(CLI, args, { ...options, ...dyingWith }));
}

/** Kills every process the bench started that still runs: for a signal, which skips the bench's orderly stop. */
export function killStartedProcesses(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
}

/** build/src/main.js: the bench runs every server and the load generator as its own process. */
const CLI = join(__dirname, '..', 'main.js');

export interface Running {
  readonly port: number;
  /** CPU time and resident memory of the server's processes (workers included), where /proc tells. */
  usage(): ProcessUsage | undefined;
  stop(): Promise<void>;
}

export interface ProcessUsage {
  readonly cpuSeconds: number;
  readonly residentBytes: number;
}

/** Clock ticks per second of /proc/<pid>/stat's times (getconf CLK_TCK; 100 on Linux unless configured otherwise). */
const clockTicks = onFirstUse(() => Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100);
const pageBytes = onFirstUse(() => Number(spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).stdout?.trim()) || 4096);

/** A process and its descendants (the cluster workers of a WORKERS=N server); throws if one ends while it is read. */
export function processTree(pid: number): number[] {
  const children = readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter((child) => child !== '').map(Number),
  );
  return [pid, ...children.flatMap(processTree)];
}

/** Summed over the tree; undefined where there is no /proc (not Linux) or the process is gone. */
export function processTreeUsage(pid: number): ProcessUsage | undefined {
  try {
    let ticks = 0;
    let pages = 0;
    for (const member of processTree(pid)) {
      // Fields after the command name, which is in parentheses and may hold spaces.
      const fields = readFileSync(`/proc/${member}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      ticks += Number(fields[11]) + Number(fields[12]);
      pages += Number(readFileSync(`/proc/${member}/statm`, 'utf8').split(' ')[1]);
    }
    return Number.isFinite(ticks) && Number.isFinite(pages) ? { cpuSeconds: ticks / clockTicks(), residentBytes: pages * pageBytes() } : undefined;
  } catch {
    return undefined;
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit();
    else child.once('exit', () => resolveExit());
  });
}

/** Spawns `node build/src/main.js <args>` and resolves with the port of the first JSON line that has one. */
async function startServerProcess(args: readonly string[], env: NodeJS.ProcessEnv, portMessage: string): Promise<Running> {
  const child = spawnStarted(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolvePort, reject) => {
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code} before listening`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === portMessage && entry.port !== undefined) resolvePort(entry.port);
      } catch {
        // Not a JSON log line.
      }
    });
  });
  return {
    port,
    usage: () => (child.pid === undefined ? undefined : processTreeUsage(child.pid)),
    async stop() {
      child.kill('SIGTERM');
      await exited(child);
    },
  };
}

/**
 * ringlimit serve on a free gRPC port (HTTP on a free port too), `workers` processes sharing it.
 * `baseEnv` is the bench's own environment (PATH and the like); the bench's settings win over it.
 */
export function startRingLimit(baseEnv: NodeJS.ProcessEnv, env: Record<string, string>, workers: number): Promise<Running> {
  const settings = { GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', LOG_LEVEL: 'info', WORKERS: String(workers), ...env };
  return startServerProcess(['serve'], { ...baseEnv, ...settings }, 'gRPC server listening');
}

/** A baseline server (bench/baseline-servers.ts) on the given shards. */
export function startBaseline(baseEnv: NodeJS.ProcessEnv, kind: string, shardUrls: readonly string[]): Promise<Running> {
  return startServerProcess(['bench-baseline', kind, shardUrls.join(',')], baseEnv, 'baseline server listening');
}

export function startNoop(baseEnv: NodeJS.ProcessEnv): Promise<Running> {
  return startServerProcess(['bench-noop'], baseEnv, 'no-op server listening');
}

/** Runs one load in the load-generator child process, reporting progress as it goes. */
export function runLoadInChild(spec: LoadSpec, onProgress: (sent: number) => void): Promise<LoadResult> {
  const child = forkStarted(['bench-load'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolveLoad, reject) => {
    child.on('message', (message: LoadMessage) => {
      if (message.kind === 'progress') onProgress(message.sent);
      else if (message.kind === 'done') resolveLoad(message.result);
      else reject(new Error(message.error));
    });
    child.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
    child.send(spec);
  }).finally(() => child.kill()) as Promise<LoadResult>;
}

export function redisAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface RedisShards {
  readonly urls: readonly string[];
  /** Redis commands run on all shards since the last reset, by name (INFO commandstats). */
  commandCalls(): Promise<Map<string, number>>;
  resetStats(): Promise<void>;
  stop(): Promise<void>;
}

/** `count` redis-server processes on free loopback ports, nothing persisted. */
export async function startRedisShards(count: number): Promise<RedisShards> {
  const ports = await Promise.all(Array.from({ length: count }, freePort));
  const children = ports.map((port) => spawnStarted('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }));
  // Queued until each server listens (it may take a moment to start): the first PING answers once it does.
  const clients = ports.map((port) => new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50 }));
  for (const client of clients) client.on('error', () => undefined);
  await Promise.all(clients.map((client) => client.ping()));
  return {
    urls: ports.map((port) => `redis://127.0.0.1:${port}`),
    async commandCalls() {
      const totals = new Map<string, number>();
      for (const client of clients) {
        for (const match of (await client.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
          totals.set(match[1] as string, (totals.get(match[1] as string) ?? 0) + Number(match[2]));
        }
      }
      return totals;
    },
    async resetStats() {
      await Promise.all(clients.map((client) => client.config('RESETSTAT')));
    },
    async stop() {
      for (const client of clients) client.disconnect();
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(children.map(exited));
    },
  };
}
