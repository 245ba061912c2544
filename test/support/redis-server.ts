import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A free TCP port on loopback: listen on 0, read the port, close. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface RedisServerOptions {
  /** Extra redis-server arguments, e.g. ['--requirepass', 'secret'] or the TLS ones. */
  readonly args?: readonly string[];
  /** Use this port instead of a free one (to restart a shard where it was). */
  readonly port?: number;
}

/** A redis-server child of this test process on a free loopback port, with nothing on disk. */
export class RedisServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly exited: Promise<void>,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    if (!redisServerAvailable()) throw new Error('redis-server is not installed (Debian: apt-get install -y redis-server); .ci/run installs it');
    const port = options.port ?? (await freePort());
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(options.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
    let output = '';
    await new Promise<void>((resolveReady, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) resolveReady();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output.slice(-500)}`)));
    });
    child.stdout?.removeAllListeners('data');
    child.stderr?.removeAllListeners('data');
    child.stdout?.resume();
    child.stderr?.resume();
    return new RedisServer(child, port, exited);
  }

  url(credentials = ''): string {
    return `redis://${credentials}127.0.0.1:${this.port}`;
  }

  /** SIGSTOP: the process holds its connections but answers nothing. */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** SIGKILL, then wait for the exit. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Starts `count` shards; the caller stops them with `stopAll`. */
export async function startShards(count: number, options: RedisServerOptions = {}): Promise<RedisServer[]> {
  return Promise.all(Array.from({ length: count }, () => RedisServer.start(options)));
}

export async function stopAll(servers: readonly (RedisServer | undefined)[]): Promise<void> {
  await Promise.all(servers.map((server) => server?.kill()));
}
