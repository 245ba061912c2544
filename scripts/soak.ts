import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisAvailable, runLoadInChild, startRedisShards, startRingLimit } from '../src/bench/processes';
import { BENCH_RULES } from '../src/bench/workloads';

/*
 * The soak run (not CI): ringlimit on three Redis shards at half of its own measured maximum
 * (1,000 uniform keys) for SOAK_SECONDS (default 300), sampling its resident memory, heap and
 * event-loop delay from /metrics every SAMPLE_SECONDS. It ends by itself and prints the samples
 * and how much memory and loop delay drifted between the first and the last third.
 *   npm run build && node build/scripts/soak.js
 */

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const SAMPLE_SECONDS = Number(process.env.SAMPLE_SECONDS ?? 15);

interface Sample {
  readonly atSeconds: number;
  readonly rssMb: number;
  readonly heapMb: number;
  readonly loopDelayP99Ms: number;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

async function sample(httpPort: number, startedAt: number): Promise<Sample> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    atSeconds: Math.round((Date.now() - startedAt) / 1000),
    rssMb: value('ringlimit_process_resident_memory_bytes') / 2 ** 20,
    heapMb: value('ringlimit_process_heap_used_bytes') / 2 ** 20,
    loopDelayP99Ms: value('ringlimit_event_loop_delay_p99_seconds') * 1000,
  };
}

const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);

async function main(): Promise<void> {
  if (!redisAvailable()) throw new Error('redis-server is not installed (apt-get install -y redis-server)');
  const workDir = await mkdtemp(join(tmpdir(), 'ringlimit-soak-'));
  const configDir = join(workDir, 'rules');
  await mkdir(configDir);
  await writeFile(join(configDir, 'bench.yaml'), BENCH_RULES);
  const shards = await startRedisShards(3);
  const httpPort = await freePort();
  const server = await startRingLimit(process.env, { CONFIG_DIR: configDir, HTTP_PORT: String(httpPort), REDIS_SHARDS: shards.urls.map((url, index) => `s${index}=${url}`).join(',') }, 1);
  try {
    const spec = { port: server.port, workload: 'uniform_1k' as const, connections: 4, streams: 16 };
    const maximum = await runLoadInChild({ ...spec, seconds: 5 }, () => undefined);
    const rate = Math.round(maximum.requestsPerSecond / 2);
    console.log(`soak: maximum ${Math.round(maximum.requestsPerSecond)} calls/s; running ${SOAK_SECONDS} s at ${rate} calls/s`);
    const startedAt = Date.now();
    const samples: Sample[] = [];
    const sampler = setInterval(() => {
      void sample(httpPort, startedAt).then((taken) => {
        samples.push(taken);
        console.log(`  t=${taken.atSeconds}s rss ${taken.rssMb.toFixed(1)} MB, heap ${taken.heapMb.toFixed(1)} MB, event-loop p99 ${taken.loopDelayP99Ms.toFixed(2)} ms`);
      });
    }, SAMPLE_SECONDS * 1000);
    const load = await runLoadInChild({ ...spec, seconds: SOAK_SECONDS, ratePerSecond: rate }, () => undefined);
    clearInterval(sampler);
    const third = Math.max(1, Math.floor(samples.length / 3));
    const [first, last] = [samples.slice(0, third), samples.slice(-third)];
    console.log(
      `soak: ${load.requests} calls answered, ${load.errors} errors, p50 ${load.p50Ms.toFixed(3)} ms, p99 ${load.p99Ms.toFixed(3)} ms, p99.9 ${load.p999Ms.toFixed(3)} ms`,
    );
    console.log(
      `soak: rss ${mean(first.map((s) => s.rssMb)).toFixed(1)} -> ${mean(last.map((s) => s.rssMb)).toFixed(1)} MB, ` +
        `heap ${mean(first.map((s) => s.heapMb)).toFixed(1)} -> ${mean(last.map((s) => s.heapMb)).toFixed(1)} MB, ` +
        `event-loop p99 ${mean(first.map((s) => s.loopDelayP99Ms)).toFixed(2)} -> ${mean(last.map((s) => s.loopDelayP99Ms)).toFixed(2)} ms (first third -> last third)`,
    );
  } finally {
    await server.stop();
    await shards.stop();
    await rm(workDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`soak: ${String(error)}`);
  process.exit(1);
});
