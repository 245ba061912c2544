import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runLoad } from '../support/load';
import { makeTempDir } from '../support/paths';
import { RingLimitProcess } from '../support/ringlimit-process';
import { RedisServer, startShards, stopAll } from '../support/redis-server';
import { d, RlsTestClient } from '../support/rls-client';

const HOT_CAPACITY = 50;
const HOT_PER_SECOND = 100;
const RULES = `domain: load
descriptors:
  - key: hot
    rate_limit: {unit: second, requests_per_unit: ${HOT_PER_SECOND}, capacity: ${HOT_CAPACITY}}
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 20}
`;
const REQUESTS = 10_000;
const CONCURRENCY = 64;

/** Redis commands run on all shards since the last reset (INFO commandstats), by command. */
async function commandCalls(servers: readonly RedisServer[]): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  for (const server of servers) {
    const client = new Redis(server.url());
    try {
      for (const match of (await client.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
        totals.set(match[1] as string, (totals.get(match[1] as string) ?? 0) + Number(match[2]));
      }
    } finally {
      client.disconnect();
    }
  }
  return totals;
}

async function resetStats(servers: readonly RedisServer[]): Promise<void> {
  for (const server of servers) {
    const client = new Redis(server.url());
    await client.config('RESETSTAT');
    client.disconnect();
  }
}

/** Round trips a decision made: script calls and reads, the commands the engine sends per call. */
function roundTrips(calls: Map<string, number>): number {
  return ['evalsha', 'eval', 'mget'].reduce((sum, command) => sum + (calls.get(command) ?? 0), 0);
}

/** A deterministic scramble of the request index, so keys and instances are not correlated (as Envoy's load balancing isn't). */
function spread(index: number, buckets: number): number {
  let hash = Math.imul(index ^ 0x3d, 0x45d9f3b);
  hash = Math.imul(hash ^ (hash >>> 16), 0x45d9f3b);
  return ((hash ^ (hash >>> 16)) >>> 0) % buckets;
}

interface ClusterRun<T> {
  readonly result: T;
  /** Committed groups whose version had moved (decided by the shard in the same round trip). */
  readonly conflictRate: number;
  readonly decisions: number;
}

describe('several ringlimit processes, two regions, three shards', function () {
  this.timeout(120_000);
  let shards: RedisServer[] = [];
  let configDir = '';

  before(async () => {
    shards = await startShards(3);
    configDir = await makeTempDir();
    await writeFile(join(configDir, 'load.yaml'), RULES);
  });
  after(() => stopAll(shards));

  /** Four fresh processes (2 per region) for one workload; their counters are summed at SIGTERM. */
  async function onCluster<T>(prefix: string, work: (clients: readonly RlsTestClient[]) => Promise<T>): Promise<ClusterRun<T>> {
    const shardList = shards.map((server, index) => `shard-${index}=${server.url()}`).join(',');
    const instances = await Promise.all(
      ['us-east', 'us-east', 'eu-west', 'eu-west'].map((region) =>
        RingLimitProcess.start({ REGION: region, REDIS_SHARDS: shardList, CONFIG_DIR: configDir, REDIS_COMMAND_TIMEOUT_MS: '500', REDIS_KEY_PREFIX: prefix }),
      ),
    );
    const clients = instances.map(({ port }) => new RlsTestClient(port));
    try {
      const result = await work(clients);
      return { result, ...(await stopAndSum(instances.map(({ process }) => process))) };
    } finally {
      for (const client of clients) client.close();
    }
  }

  async function stopAndSum(processes: readonly RingLimitProcess[]): Promise<Omit<ClusterRun<unknown>, 'result'>> {
    const stopped = await Promise.all(processes.map((process) => process.stop()));
    for (const { code } of stopped) assert.equal(code, 0, 'SIGTERM exits 0');
    const sum = (field: 'decisions' | 'groupsCommitted' | 'versionConflicts'): number =>
      stopped.reduce((total, { engine }) => total + (engine?.[field] ?? 0), 0);
    return { conflictRate: sum('versionConflicts') / Math.max(1, sum('groupsCommitted')), decisions: sum('decisions') };
  }

  it('admits no more than C + R·T of one hot key, at least 95% of it, and fails no request', async () => {
    const run = await onCluster('hot:', (clients) =>
      runLoad(REQUESTS, CONCURRENCY, (index) => (clients[index % clients.length] as RlsTestClient).call('load', [d(['hot', 'k'])])),
    );
    const { result } = run;
    const bound = HOT_CAPACITY + (HOT_PER_SECOND * result.elapsedMs) / 1000;
    console.log(
      `      hot key: admitted ${result.admitted} of ${result.sent} in ${result.elapsedMs} ms; bound C+R·T = ${bound.toFixed(1)}; ` +
        `ratio ${(result.admitted / bound).toFixed(3)}; errors ${result.errors}; version conflicts ${(run.conflictRate * 100).toFixed(2)}% of commits`,
    );
    assert.equal(result.errors, 0, result.firstError);
    assert.ok(result.admitted <= bound, `over-admitted: ${result.admitted} > ${bound}`);
    assert.ok(result.admitted >= 0.95 * bound, `under-served: ${result.admitted} < 95% of ${bound}`);
    // DESIGN.md's goal is under 1%; measured 0.5–1.2% (12–13% before an engine stopped taking a store-denied try for a step of its own).
    assert.ok(run.conflictRate < 0.03, `version conflicts ${(run.conflictRate * 100).toFixed(2)}% of commits`);
  });

  it('decides 1,000 uniform keys at about one Redis round trip per decision', async () => {
    await resetStats(shards);
    const run = await onCluster('uniform:', (clients) =>
      runLoad(REQUESTS, CONCURRENCY, (index) => (clients[spread(index, clients.length)] as RlsTestClient).call('load', [d(['user', `u${spread(index + 1, 1000)}`])])),
    );
    const trips = roundTrips(await commandCalls(shards));
    console.log(
      `      1,000 keys: ${REQUESTS} decisions in ${run.result.elapsedMs} ms; Redis round trips per decision ${(trips / REQUESTS).toFixed(3)}; ` +
        `version conflicts ${(run.conflictRate * 100).toFixed(2)}% of commits (each decided by the shard in the same round trip)`,
    );
    assert.equal(run.result.errors, 0, run.result.firstError);
    assert.ok(run.result.admitted >= REQUESTS * 0.99, `each key gets about 10 requests against a limit of 20 (admitted ${run.result.admitted})`);
    assert.ok(trips / REQUESTS <= 1.0, `one round trip per decision at most (${(trips / REQUESTS).toFixed(3)})`);
    assert.ok(run.conflictRate < 0.01, `version conflicts under 1% of commits (${(run.conflictRate * 100).toFixed(2)}%)`);
  });
});
