import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from './paths';

const CLI = join(REPO_ROOT, 'build', 'src', 'main.js');

export interface LogEntry {
  readonly msg?: string;
  readonly port?: number;
  readonly engine?: { decisions: number; groupsCommitted: number; versionConflicts: number };
  readonly [field: string]: unknown;
}

/** `ringlimit serve` as a child process on a free gRPC port, its JSON log lines collected. */
export class RingLimitProcess {
  readonly logs: LogEntry[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private readonly listening: Promise<number>;

  private constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, [CLI, 'serve'], {
      env: { ...process.env, GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.exited = new Promise((resolveExit) => this.child.once('exit', (code) => resolveExit(code)));
    this.listening = new Promise((resolvePort, reject) => {
      this.exited.then((code) => reject(new Error(`ringlimit exited with ${code}: ${JSON.stringify(this.logs.slice(-3))}`)));
      createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const entry = JSON.parse(line) as LogEntry;
        this.logs.push(entry);
        if (entry.msg === 'gRPC server listening' && entry.port !== undefined) resolvePort(entry.port);
      });
    });
  }

  static async start(env: Record<string, string>): Promise<{ process: RingLimitProcess; port: number }> {
    const started = new RingLimitProcess(env);
    return { process: started, port: await started.listening };
  }

  /** SIGHUP: reload the rules and the shard list file. */
  hangUp(): void {
    this.child.kill('SIGHUP');
  }

  /** Resolves with the first entry logged as `msg` after the first `after` log lines. */
  async waitForLog(msg: string, after: number, timeoutMs = 5000): Promise<LogEntry> {
    const startedMs = Date.now();
    for (;;) {
      const entry = this.logs.slice(after).find((logged) => logged.msg === msg);
      if (entry !== undefined) return entry;
      if (Date.now() - startedMs > timeoutMs) throw new Error(`no '${msg}' logged within ${timeoutMs} ms: ${JSON.stringify(this.logs.slice(-3))}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Closes the pipe the process logs to, as a log shipper that died would: its next log line meets EPIPE. */
  closeLogPipe(): void {
    this.child.stdout?.destroy();
  }

  /** SIGKILL, for a process that did not stop. */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** SIGTERM and wait; resolves with the exit code and the engine counters it logged. */
  async stop(): Promise<{ code: number | null; engine: LogEntry['engine'] }> {
    this.child.kill('SIGTERM');
    const code = await this.exited;
    return { code, engine: this.logs.find((entry) => entry.msg === 'ringlimit stopped')?.engine };
  }
}
