import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { latencyHistogram, loadResult } from './latency';
import { spawnStarted } from './processes';
import { ENVOY_TIMEOUT_MS, type LoadResult, type LoadSpec } from './load-types';
import { workloadFrames } from './workloads';

export function h2loadAvailable(): boolean {
  return spawnSync('h2load', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * h2load (nghttp2-client) with a prebuilt gRPC frame: a C client that can saturate a grpc-js
 * server where a Node client cannot. It sends one body, so it runs single-request workloads
 * (the hot key) only. Latencies come from its per-request log file.
 */
export async function runH2load(spec: LoadSpec, workDir: string, onProgress: (sent: number) => void): Promise<LoadResult> {
  const frames = workloadFrames(spec.workload);
  if (frames.distinct !== 1) throw new RangeError(`h2load sends one body; workload ${spec.workload} has ${frames.distinct}`);
  const frameFile = join(workDir, `${spec.workload}.grpc`);
  const logFile = join(workDir, `h2load-${Date.now()}.tsv`);
  await writeFile(frameFile, frames.frameAt(0));
  const args = [
    '-D', String(spec.seconds), '-c', String(spec.connections), '-m', String(spec.streams), '-t', '1',
    '--data', frameFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers', '-H', `grpc-timeout: ${ENVOY_TIMEOUT_MS}m`,
    '--log-file', logFile,
    ...(spec.ratePerSecond === undefined ? [] : ['--rps', String(Math.max(1, Math.round(spec.ratePerSecond / spec.connections)))]),
    `http://127.0.0.1:${spec.port}/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`,
  ];
  const output = await new Promise<string>((resolveRun, reject) => {
    const child = spawnStarted('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const started = Date.now();
    const progress = setInterval(() => onProgress(Math.round(((Date.now() - started) / 1000 / spec.seconds) * 100)), 250);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(progress);
      if (code === 0) resolveRun(text);
      else reject(new Error(`h2load exited with ${code}: ${text.slice(-500)}`));
    });
  });
  const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(output);
  const counts = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
  if (finished === null || counts === null) throw new Error(`unexpected h2load output: ${output.slice(-500)}`);
  const histogram = latencyHistogram();
  let lateAnswers = 0;
  for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
    const [, status, micros] = line.split('\t');
    if (status !== '200' || micros === undefined) continue;
    const latencyMicros = Number(micros);
    histogram.recordValue(Math.max(1, latencyMicros));
    if (latencyMicros > ENVOY_TIMEOUT_MS * 1000) lateAnswers++;
  }
  const seconds = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
  const succeeded = Number(counts[4]);
  return loadResult('h2load', { requests: succeeded, errors: Number(counts[5]) + Number(counts[6]) + Number(counts[7]), lateAnswers, seconds }, histogram);
}
