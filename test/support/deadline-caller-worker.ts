import { parentPort, workerData } from 'node:worker_threads';
import type { ServiceError } from '@grpc/grpc-js';
import { d, RlsTestClient } from './rls-client';
import { Code } from './status';
import type { DeadlineCalls, DeadlineRun } from './deadline-caller';

/** The worker side of DeadlineCaller: runs each batch of calls it is sent and posts what it saw. */
const client = new RlsTestClient((workerData as { port: number }).port);

parentPort?.on('message', (message: { id: number; spec: DeadlineCalls }) => {
  void run(message.spec).then((result) => parentPort?.postMessage({ id: message.id, run: result }));
});

async function run(spec: DeadlineCalls): Promise<DeadlineRun> {
  const result: DeadlineRun = { admitted: 0, answered: 0, slowestMs: 0, errors: [] };
  for (let index = 0; index < spec.count; index++) {
    const startedAt = performance.now();
    try {
      const response = await client.call(spec.domain, [d([spec.key, spec.value])], 0, spec.deadlineMs);
      result.answered++;
      if (response.overall_code === Code.OK) result.admitted++;
    } catch (error) {
      result.errors.push((error as ServiceError).details);
    }
    result.slowestMs = Math.max(result.slowestMs, performance.now() - startedAt);
  }
  return result;
}
