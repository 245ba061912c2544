import { Worker } from 'node:worker_threads';
import { join } from 'node:path';

/** What a run of sequential calls saw. */
export interface DeadlineRun {
  admitted: number;
  answered: number;
  slowestMs: number;
  /** The details of the calls that failed (DEADLINE_EXCEEDED, UNAVAILABLE, …). */
  errors: string[];
}

export interface DeadlineCalls {
  readonly domain: string;
  /** The descriptor is `[[key, value]]`. */
  readonly key: string;
  readonly value: string;
  readonly count: number;
  readonly deadlineMs: number;
}

interface Reply {
  readonly id: number;
  readonly run: DeadlineRun;
}

/**
 * An RLS client on a worker thread: it has its own event loop and heap, so calls measured
 * against Envoy's 20 ms are not delayed by the test runner's garbage collections or by whatever
 * else the runner's loop does (proxies, other clients, the suite's accumulated state).
 */
export class DeadlineCaller {
  private readonly worker: Worker;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve(run: DeadlineRun): void; reject(error: unknown): void }>();

  constructor(port: number) {
    this.worker = new Worker(join(__dirname, 'deadline-caller-worker.js'), { workerData: { port } });
    this.worker.on('message', (reply: Reply) => {
      this.waiting.get(reply.id)?.resolve(reply.run);
      this.waiting.delete(reply.id);
    });
    this.worker.on('error', (error) => {
      for (const { reject } of this.waiting.values()) reject(error);
      this.waiting.clear();
    });
  }

  /** `count` calls one after another, each with its own deadline. */
  calls(spec: DeadlineCalls): Promise<DeadlineRun> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, spec });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
