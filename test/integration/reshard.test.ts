import assert from 'node:assert/strict';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runLoad } from '../support/load';
import { makeTempDir } from '../support/paths';
import { RingLimitProcess } from '../support/ringlimit-process';
import { RedisServer, startShards, stopAll } from '../support/redis-server';
import { d, RlsTestClient } from '../support/rls-client';
import { Code } from '../support/status';

/** Each phase of 8 calls per key admits until the third runs the buckets out: every phase writes, and a lost count would show. */
const CAPACITY = 20;
const PER_SECOND = CAPACITY / 60;
const RULES = `domain: reshard\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: ${CAPACITY}}\n`;
const KEYS = 300;
const HITS_PER_KEY = 24;
const PREFIX = 'reshard:';
/** Calls sent while a shard-list change is being applied, before the rest wait for it. */
const IN_FLIGHT_DURING_CHANGE = 200;

/** Bucket records a shard holds under the test's prefix. */
async function bucketsOn(server: RedisServer): Promise<Set<string>> {
  const client = new Redis(server.url());
  try {
    return new Set((await client.keys(`${PREFIX}*`)).filter((key) => !key.startsWith(`${PREFIX}idem|`)));
  } finally {
    client.disconnect();
  }
}

describe('shards added and removed mid-load (REDIS_SHARDS_FILE + SIGHUP)', function () {
  this.timeout(60_000);
  let servers: RedisServer[] = [];
  let instances: RingLimitProcess[] = [];
  let clients: RlsTestClient[] = [];
  let shardsFile = '';

  before(async () => {
    servers = await startShards(4);
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(instances.map((instance) => instance.stop()));
    await stopAll(servers);
  });

  /** Writes the shard list whole (rename, so no reader sees half a file), then SIGHUPs every instance and waits until each has moved. */
  async function useShards(names: readonly string[]): Promise<void> {
    const text = names.map((name) => `${name}=${(servers['abcd'.indexOf(name)] as RedisServer).url()}`).join('\n');
    await writeFile(`${shardsFile}.next`, `# shards of the reshard test\n${text}\n`);
    const marks = instances.map((instance) => instance.logs.length);
    await rename(`${shardsFile}.next`, shardsFile);
    for (const instance of instances) instance.hangUp();
    await Promise.all(instances.map((instance, index) => instance.waitForLog('shard list reloaded', marks[index] as number)));
  }

  it('moves about 1/N of the buckets each time, hands them off, and admits within the bound', async () => {
    const configDir = await makeTempDir();
    await writeFile(join(configDir, 'reshard.yaml'), RULES);
    shardsFile = join(configDir, '..', `shards-${Date.now()}.txt`);
    await writeFile(shardsFile, ['a', 'b', 'c'].map((name) => `${name}=${(servers['abc'.indexOf(name)] as RedisServer).url()}`).join('\n'));
    const started = await Promise.all(
      ['us-east', 'eu-west'].map((region) => RingLimitProcess.start({ REGION: region, REDIS_SHARDS_FILE: shardsFile, CONFIG_DIR: configDir, REDIS_KEY_PREFIX: PREFIX })),
    );
    instances = started.map(({ process }) => process);
    clients = started.map(({ port }) => new RlsTestClient(port));

    const admittedPerKey = new Array<number>(KEYS).fill(0);
    const total = KEYS * HITS_PER_KEY;
    let added: Promise<void> | undefined;
    let removed: Promise<{ onAdded: number; before: number }> | undefined;
    const load = await runLoad(total, 32, async (index) => {
      if (index === Math.floor(total / 3)) added = useShards(['a', 'b', 'c', 'd']);
      if (index === Math.floor((2 * total) / 3)) {
        removed = (async () => {
          await added;
          const survivors = (await Promise.all(servers.slice(1).map(bucketsOn))).map((keys) => keys.size);
          await useShards(['b', 'c', 'd']);
          // d started empty: what it holds now is what moved to it when it was added.
          return { onAdded: survivors[2] as number, before: survivors.reduce((sum, count) => sum + count, 0) };
        })();
      }
      // Calls keep flowing while a change is applied; the rest of the load waits for it, so each phase has its share.
      if (index > Math.floor(total / 3) + IN_FLIGHT_DURING_CHANGE) await added;
      if (index > Math.floor((2 * total) / 3) + IN_FLIGHT_DURING_CHANGE) await removed;
      const key = index % KEYS;
      const response = await (clients[(index >> 3) % clients.length] as RlsTestClient).call('reshard', [d(['user', `u${key}`])]);
      if (response.overall_code === Code.OK) admittedPerKey[key] = (admittedPerKey[key] ?? 0) + 1;
      return response;
    });
    await added;
    const removal = await removed;
    assert.ok(removal !== undefined, 'both changes happened mid-load');

    const [, b, c, dShard] = servers as [RedisServer, RedisServer, RedisServer, RedisServer];
    const afterRemoval = (await Promise.all([b, c, dShard].map(bucketsOn))).reduce((sum, keys) => sum + keys.size, 0);
    const addedFraction = removal.onAdded / KEYS;
    const removedFraction = (afterRemoval - removal.before) / KEYS;

    const bound = CAPACITY + PER_SECOND * (load.elapsedMs / 1000);
    const overBound = admittedPerKey.filter((admitted) => admitted > bound);
    const reloads = instances.flatMap((instance) => instance.logs.filter((entry) => entry.msg === 'shard list reloaded'));
    console.log(
      `      ${total} calls in ${load.elapsedMs} ms over ${KEYS} keys; moved fraction adding d to a,b,c: ${addedFraction.toFixed(3)} (ideal 0.25), ` +
        `removing a from a,b,c,d: ${removedFraction.toFixed(3)} (ideal 0.25); admitted ${load.admitted} (bound ${(bound * KEYS).toFixed(0)}); ` +
        `keys over C + R·T: ${overBound.length}; reloads logged ${reloads.length}`,
    );
    assert.equal(load.errors, 0, load.firstError);
    assert.ok(addedFraction > 0.12 && addedFraction < 0.38, `adding one shard to 3 moves about 1/4 (${addedFraction})`);
    assert.ok(removedFraction > 0.12 && removedFraction < 0.38, `removing one of 4 moves about 1/4 (${removedFraction})`);
    assert.deepEqual(overBound, [], 'no key admitted more than C + R·T: moved buckets kept their counts');
    assert.ok(load.admitted >= 0.95 * CAPACITY * KEYS, `the limit is served (${load.admitted})`);
  });

  it('refuses a shard list that does not parse or whose new shard refuses the password, and keeps serving on the last good one', async () => {
    const locked = await RedisServer.start({ args: ['--requirepass', 'right-secret'] });
    const configDir = await makeTempDir();
    await writeFile(join(configDir, 'reshard.yaml'), RULES);
    const file = join(configDir, '..', `shards-bad-${Date.now()}.txt`);
    await writeFile(file, `a=${(servers[0] as RedisServer).url()}\n`);
    const { process: instance, port } = await RingLimitProcess.start({ REDIS_SHARDS_FILE: file, CONFIG_DIR: configDir, REDIS_KEY_PREFIX: 'bad-list:' });
    const client = new RlsTestClient(port);
    try {
      const attempts = [`a=${(servers[0] as RedisServer).url()}\nb=http://nowhere\n`, `a=${(servers[0] as RedisServer).url()}\nb=${locked.url(':wrong-secret@')}\n`];
      for (const text of attempts) {
        const mark = instance.logs.length;
        await writeFile(file, text);
        instance.hangUp();
        const refused = await instance.waitForLog('shard list not reloaded; the last good one stays in force', mark);
        assert.match(String(refused.err), /REDIS_SHARDS_FILE|b/);
        assert.equal((await client.call('reshard', [d(['user', 'still-served'])])).overall_code, Code.OK);
      }
      assert.ok(!instance.logs.some((entry) => entry.msg === 'shard list reloaded'), 'the ring never changed');
      assert.ok(instance.logs.some((entry) => /WRONGPASS|password/i.test(String(entry.err))), 'the password refusal is what is logged');
      assert.ok(!instance.logs.some((entry) => JSON.stringify(entry).includes('wrong-secret')), 'the password itself is never logged');
    } finally {
      client.close();
      await instance.stop();
      await locked.kill();
    }
  });
});
