import assert from 'node:assert/strict';
import { rename, rm, symlink, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { d } from '../support/rls-client';
import { Code } from '../support/status';
import { startTestServer, type TestServer } from '../support/test-server';

const rules = (requestsPerUnit: number): string =>
  `domain: reload\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: ${requestsPerUnit}}\n`;

/** The design target is 1 s from a change to serving it; the poll gives the check that much. */
const RELOAD_BUDGET_MS = 1000;

async function eventually(check: () => Promise<boolean>, budgetMs: number): Promise<number> {
  const startedMs = Date.now();
  for (;;) {
    if (await check()) return Date.now() - startedMs;
    if (Date.now() - startedMs > budgetMs) throw new Error(`not seen within ${budgetMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('config reload', () => {
  let server: TestServer;
  let unique = 0;
  beforeEach(async () => {
    server = await startTestServer({ 'reload.yaml': rules(5) });
  });
  afterEach(() => server.stop());

  const limitNow = async (): Promise<number | undefined> => {
    const response = await server.client.call('reload', [d(['k', `v${++unique}`])]);
    return response.statuses[0]?.current_limit?.requests_per_unit;
  };

  it('serves a changed file within 1 s', async () => {
    assert.equal(await limitNow(), 5);
    await server.writeRules('reload.yaml', rules(7));
    await eventually(async () => (await limitNow()) === 7, RELOAD_BUDGET_MS);
  });

  it('keeps the last good config when a change is invalid, and loads the fix', async () => {
    await server.writeRules('reload.yaml', 'domain: reload\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight}\n');
    await eventually(async () => server.app.rules.lastError() !== undefined, RELOAD_BUDGET_MS);
    assert.match(server.app.rules.lastError()?.message ?? '', /reload\.yaml:4: descriptors\[0\]\.rate_limit\.unit: invalid rate limit unit 'fortnight'/);
    assert.equal(await limitNow(), 5, 'still serving the last good rules');
    await server.writeRules('reload.yaml', rules(9));
    await eventually(async () => (await limitNow()) === 9, RELOAD_BUDGET_MS);
    assert.equal(server.app.rules.lastError(), undefined);
  });

  it('serves only whole configs through rapid successive edits, then the last one', async () => {
    // Two rules per version, with the version in both: a torn read would show a mix or a rule missing.
    const version = (n: number): string =>
      `domain: reload\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: ${100 + n}}\n  - key: m\n    rate_limit: {unit: hour, requests_per_unit: ${100 + n}}\n`;
    let editing = true;
    const seen: string[] = [];
    const watcher = (async () => {
      while (editing) {
        const [k, m] = (await server.http('GET', '/rlconfig')).text.trim().split('\n');
        seen.push(`${k?.match(/requests_per_unit=(\d+)/)?.[1]}/${m?.match(/requests_per_unit=(\d+)/)?.[1] ?? 'missing'}`);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    for (let n = 1; n <= 30; n++) {
      // Written in place, in two halves, as an editor or a slow copy would.
      const text = version(n);
      await writeFile(join(server.configDir, 'reload.yaml'), text.slice(0, text.length / 2));
      await writeFile(join(server.configDir, 'reload.yaml'), text);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await eventually(async () => (await server.http('GET', '/rlconfig')).text.includes('requests_per_unit=130'), 2000);
    editing = false;
    await watcher;
    const torn = seen.filter((pair) => pair !== '5/missing' && pair.split('/')[0] !== pair.split('/')[1]);
    assert.deepEqual(torn, [], `every config served was whole (${seen.length} looks)`);
  });

  it('loads a new file and drops a removed one', async () => {
    await server.writeRules('second.yaml', 'domain: second\ndescriptors:\n  - key: s\n    rate_limit: {unit: day, requests_per_unit: 2}\n');
    await eventually(async () => (await server.client.call('second', [d(['s', 'x'])])).statuses[0]?.current_limit !== undefined, RELOAD_BUDGET_MS);
    await rm(join(server.configDir, 'second.yaml'));
    await eventually(async () => (await server.client.call('second', [d(['s', 'y'])])).statuses[0]?.current_limit === undefined, RELOAD_BUDGET_MS);
  });

  it('follows a Kubernetes-style ..data symlink swap without reading the hidden copies', async () => {
    await rm(join(server.configDir, 'reload.yaml'));
    const version = async (name: string, requestsPerUnit: number): Promise<void> => {
      await mkdir(join(server.configDir, name));
      await writeFile(join(server.configDir, name, 'reload.yaml'), rules(requestsPerUnit));
    };
    await version('..v1', 11);
    await symlink('..v1', join(server.configDir, '..data'));
    await symlink('..data/reload.yaml', join(server.configDir, 'reload.yaml'));
    await eventually(async () => (await limitNow()) === 11, RELOAD_BUDGET_MS);
    await version('..v2', 12);
    await symlink('..v2', join(server.configDir, '..data_tmp'));
    await rename(join(server.configDir, '..data_tmp'), join(server.configDir, '..data'));
    await eventually(async () => (await limitNow()) === 12, RELOAD_BUDGET_MS);
    assert.equal(server.app.rules.lastError(), undefined, 'no duplicate-domain error from the ..v1/..v2 copies');
  });

  it('keeps bucket state across a reload that keeps the rule', async () => {
    await server.client.call('reload', [d(['k', 'kept'])], 3);
    await server.writeRules('reload.yaml', `# touched\n${rules(5)}`);
    await eventually(async () => server.app.rules.current()?.files.length === 1 && (await limitNow()) === 5, RELOAD_BUDGET_MS);
    const response = await server.client.call('reload', [d(['k', 'kept'])]);
    assert.equal(response.overall_code, Code.OK);
    assert.equal(response.statuses[0]?.limit_remaining, 1);
  });
});
