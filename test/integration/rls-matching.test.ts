import assert from 'node:assert/strict';
import { d } from '../support/rls-client';
import { fixtureText } from '../support/rules';
import { assertNoLimit, assertOk, assertOver, assertUnlimited, Code, Unit } from '../support/status';
import { startTestServer, type TestServer } from '../support/test-server';

/** Scenarios A and E of ENVOY_RATELIMIT_SCENARIOS.md over gRPC on loopback. */
describe('ShouldRateLimit over gRPC: matching', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'basic.yaml': fixtureText('basic.yaml'), 'wildcard.yaml': fixtureText('wildcard.yaml') });
  });
  after(() => server.stop());

  const status = async (domain: string, ...entries: [string, string][]) => {
    const response = await server.client.call(domain, [d(...entries)]);
    assert.equal(response.statuses.length, 1);
    return response.statuses[0];
  };

  it('matches a key-only default for any value (A1)', async () => {
    assertOk(await status('test-domain', ['key2', 'a1']), 20, Unit.MINUTE, 19);
  });

  it('prefers a key+value rule and keeps its own bucket (A2)', async () => {
    assertOk(await status('test-domain', ['key2', 'value2']), 30, Unit.MINUTE, 29);
    assertOk(await status('test-domain', ['key2', 'value2']), 30, Unit.MINUTE, 28);
    assertOk(await status('test-domain', ['key2', 'a2']), 20, Unit.MINUTE, 19);
  });

  it('never limits a whitelisted value (A3)', async () => {
    for (let call = 0; call < 100; call++) assertNoLimit(await status('test-domain', ['key2', 'value3']));
  });

  it('gives no limit to a placeholder parent or an unknown value (A4, A7)', async () => {
    assertNoLimit(await status('test-domain', ['key1', 'value1']));
    assertNoLimit(await status('test-domain', ['key1', 'something']));
  });

  it('limits nested 2-level defaults until over limit (A5)', async () => {
    for (let call = 1; call <= 5; call++) assertOk(await status('test-domain', ['key1', 'value1'], ['subkey1', 'a5']), 5, Unit.SECOND, 5 - call);
    assertOver(await status('test-domain', ['key1', 'value1'], ['subkey1', 'a5']), 5, Unit.SECOND);
  });

  it('prefers the nested exact rule (A6)', async () => {
    assertOk(await status('test-domain', ['key1', 'value1'], ['subkey1', 'subvalue1']), 10, Unit.SECOND, 9);
  });

  it('requires the request to be exactly as deep as the rule (A8, A9)', async () => {
    assertNoLimit(await status('test-domain', ['key2', 'value2'], ['subkey', 'subvalue']));
    assertNoLimit(await status('test-domain', ['key5', 'value5'], ['subkey5', 'subvalue']));
    assertOk(await status('test-domain', ['key5', 'value5']), 15, Unit.DAY, 14);
    assertOk(await status('test-domain', ['key5', 'value5'], ['subkey5', 'subvalue5']), 25, Unit.DAY, 24);
  });

  it('answers OK with no limit for an unknown domain, not an error (A11)', async () => {
    const response = await server.client.call('foo', [d(['hello', 'world'])]);
    assert.equal(response.overall_code, Code.OK);
    assertNoLimit(response.statuses[0]);
  });

  it('treats an empty value as the key-only default and keys as case-sensitive (A12, A13)', async () => {
    assertOk(await status('test-domain', ['key2', '']), 20, Unit.MINUTE, 19);
    assertNoLimit(await status('test-domain', ['KEY2', 'x']));
  });

  it('answers unlimited rules with limit_remaining 4294967295 (D25)', async () => {
    for (let call = 0; call < 50; call++) assertUnlimited(await status('test-domain', ['key6', 'foo']));
  });

  it('echoes the rule name in current_limit', async () => {
    const named = await status('test-domain', ['key4', 'n1']);
    assert.equal(named?.current_limit?.name, 'key4_rate_limit');
  });

  it('matches trailing wildcards with one bucket per value (E33, E34)', async () => {
    assertOk(await status('wild-domain', ['wild', 'foo1']), 20, Unit.MINUTE, 19);
    assertOk(await status('wild-domain', ['wild', 'foo2']), 20, Unit.MINUTE, 19);
    assertOk(await status('wild-domain', ['wild', 'foo']), 20, Unit.MINUTE, 19);
    assertNoLimit(await status('wild-domain', ['wild', 'bar']));
    assertNoLimit(await status('wild-domain', ['noWild', 'foo1']));
  });

  it('matches nested, middle and multiple wildcards (E35, E36)', async () => {
    assertOk(await status('wild-domain', ['nestedWild', 'val1'], ['wild', 'goo2']), 20, Unit.MINUTE, 19);
    assertOk(await status('wild-domain', ['midWild', 'bar123b']), 20, Unit.MINUTE, 19);
    assertNoLimit(await status('wild-domain', ['midWild', 'xbarb']));
    assertOk(await status('wild-domain', ['multiWild', 'foo1bar2baz']), 10, Unit.MINUTE, 9);
    assertNoLimit(await status('wild-domain', ['multiWild', 'foo123baz']));
  });

  it('prefers an exact value over a matching wildcard (E37)', async () => {
    assertOk(await status('wild-domain', ['file', 'test1']), 50, Unit.MINUTE, 49);
    assertOk(await status('wild-domain', ['file', 'test2']), 100, Unit.MINUTE, 99);
  });

  it('shares one bucket across share_threshold wildcard matches only (E38)', async () => {
    for (let call = 1; call <= 10; call++) assertOk(await status('wild-domain', ['files', `files/${call}.pdf`]), 10, Unit.HOUR, 10 - call);
    assertOver(await status('wild-domain', ['files', 'files/b.csv']), 10, Unit.HOUR);
    for (let call = 1; call <= 10; call++) assertOk(await status('wild-domain', ['files_no_share', `files_no_share/${call}`]), 10, Unit.HOUR, 9);
  });

  it('answers one status per descriptor, in request order (D26)', async () => {
    const response = await server.client.call('test-domain', [d(['key2', 'd26']), d(['hello', 'world']), d(['key6', 'x'])]);
    assert.equal(response.overall_code, Code.OK);
    assertOk(response.statuses[0], 20, Unit.MINUTE, 19);
    assertNoLimit(response.statuses[1]);
    assertUnlimited(response.statuses[2]);
  });
});
