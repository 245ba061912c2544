import assert from 'node:assert/strict';
import { matchDescriptor, matchesPattern } from '../../../src/matcher/match-descriptor';
import { compileYaml, domainOf, fixtureText } from '../../support/rules';

const basic = domainOf(compileYaml(fixtureText('basic.yaml')), 'test-domain').root;
const wild = domainOf(compileYaml(fixtureText('wildcard.yaml')), 'wild-domain').root;

const entries = (...pairs: [string, string][]) => pairs.map(([key, value]) => ({ key, value }));
const ruleOf = (root: typeof basic, ...pairs: [string, string][]) => matchDescriptor(root, entries(...pairs))?.node.fullKey;

describe('matchDescriptor', () => {
  it('uses the key-only rule for any value', () => {
    assert.equal(ruleOf(basic, ['key2', 'something']), 'test-domain.key2');
  });

  it('prefers the key+value rule over the key-only rule', () => {
    assert.equal(ruleOf(basic, ['key2', 'value2']), 'test-domain.key2_value2');
  });

  it('matches nothing for a key+value rule without a limit (whitelist) or a parent without one', () => {
    assert.equal(ruleOf(basic, ['key2', 'value3']), undefined);
    assert.equal(ruleOf(basic, ['key1', 'value1']), undefined);
  });

  it('walks nested rules two levels deep, exact before default', () => {
    assert.equal(ruleOf(basic, ['key1', 'value1'], ['subkey1', 'something']), 'test-domain.key1_value1.subkey1');
    assert.equal(ruleOf(basic, ['key1', 'value1'], ['subkey1', 'subvalue1']), 'test-domain.key1_value1.subkey1_subvalue1');
  });

  it('applies a limit only when the request is exactly as deep as the rule', () => {
    assert.equal(ruleOf(basic, ['key2', 'value2'], ['subkey', 'subvalue']), undefined);
    assert.equal(ruleOf(basic, ['key5', 'value5'], ['subkey5', 'subvalue']), undefined);
    assert.equal(ruleOf(basic, ['key5', 'value5']), 'test-domain.key5_value5');
    assert.equal(ruleOf(basic, ['key5', 'value5'], ['subkey5', 'subvalue5']), 'test-domain.key5_value5.subkey5_subvalue5');
  });

  it('does not backtrack to the key-only sibling once a key+value rule is taken', () => {
    const root = domainOf(
      compileYaml(`domain: d
descriptors:
  - key: a
    value: x
    descriptors:
      - {key: b, value: y, rate_limit: {unit: day, requests_per_unit: 1}}
  - key: a
    descriptors:
      - {key: b, rate_limit: {unit: day, requests_per_unit: 5}}
`),
      'd',
    ).root;
    assert.equal(ruleOf(root, ['a', 'x'], ['b', 'z']), undefined);
    assert.equal(ruleOf(root, ['a', 'q'], ['b', 'z']), 'd.a.b');
  });

  it('matches three levels deep', () => {
    const root = domainOf(
      compileYaml(`domain: d
descriptors:
  - key: tenant
    descriptors:
      - key: user
        descriptors:
          - key: path
            value: /login
            rate_limit: {unit: minute, requests_per_unit: 3}
`),
      'd',
    ).root;
    assert.equal(ruleOf(root, ['tenant', 't1'], ['user', 'u1'], ['path', '/login']), 'd.tenant.user.path_/login');
    assert.equal(ruleOf(root, ['tenant', 't1'], ['user', 'u1'], ['path', '/other']), undefined);
    assert.equal(ruleOf(root, ['tenant', 't1'], ['user', 'u1']), undefined);
  });

  it('is case-sensitive and treats an empty value as "use the key-only rule"', () => {
    assert.equal(ruleOf(basic, ['KEY2', 'x']), undefined);
    assert.equal(ruleOf(basic, ['key2', '']), 'test-domain.key2');
  });

  it('matches no descriptor with no entries', () => {
    assert.equal(matchDescriptor(basic, []), undefined);
  });

  it('matches trailing, middle and multiple wildcards', () => {
    assert.equal(ruleOf(wild, ['wild', 'foo1']), 'wild-domain.wild_foo*');
    assert.equal(ruleOf(wild, ['wild', 'foo']), 'wild-domain.wild_foo*');
    assert.equal(ruleOf(wild, ['wild', 'bar']), undefined);
    assert.equal(ruleOf(wild, ['noWild', 'foo1']), undefined);
    for (const value of ['barab', 'bar123b', 'barb']) assert.equal(ruleOf(wild, ['midWild', value]), 'wild-domain.midWild_bar*b');
    for (const value of ['bara', 'xbarb']) assert.equal(ruleOf(wild, ['midWild', value]), undefined);
    for (const value of ['foo123bar456baz', 'foobarbaz']) assert.equal(ruleOf(wild, ['multiWild', value]), 'wild-domain.multiWild_foo*bar*baz');
    for (const value of ['foo123baz', 'bar456baz']) assert.equal(ruleOf(wild, ['multiWild', value]), undefined);
    assert.equal(ruleOf(wild, ['nestedWild', 'val1'], ['wild', 'goo2']), 'wild-domain.nestedWild_val1.wild_goo*');
  });

  it('prefers an exact value over a wildcard that also matches', () => {
    assert.equal(ruleOf(wild, ['file', 'test1']), 'wild-domain.file_test1');
    assert.equal(ruleOf(wild, ['file', 'test2']), 'wild-domain.file_test*');
  });

  it('names share_threshold buckets by the pattern and others by the request value', () => {
    assert.deepEqual(matchDescriptor(wild, entries(['files', 'files/a.pdf']))?.bucketEntries, entries(['files', 'files/*']));
    assert.deepEqual(matchDescriptor(wild, entries(['wild', 'foo1']))?.bucketEntries, entries(['wild', 'foo1']));
  });

  it('does not let a wildcard match overlap its prefix and suffix', () => {
    const pattern = { text: 'ab*ba', parts: ['ab', 'ba'] };
    assert.equal(matchesPattern(pattern, 'aba'), false);
    assert.equal(matchesPattern(pattern, 'abba'), true);
  });
});
