import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { compileRuleSet } from '../../../src/config/compile-rules';
import { validateRuleFile } from '../../../src/config/validate-rules';
import { ConfigError } from '../../../src/core';
import { fixturePath } from '../../support/paths';

function loadError(files: Record<string, string>): ConfigError {
  try {
    compileRuleSet(Object.entries(files).map(([file, text]) => validateRuleFile(file, text)));
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_CONFIG');
    return error;
  }
  throw new Error('expected the config to be rejected');
}

const rule = (body: string): string => `domain: d\ndescriptors:\n  - key: k\n${body}`;

describe('rule validation', () => {
  it('loads envoyproxy/ratelimit basic and wildcard configs', async () => {
    const files = ['basic.yaml', 'wildcard.yaml'];
    const specs = await Promise.all(files.map(async (name) => validateRuleFile(name, await readFile(fixturePath('rules', name), 'utf8'))));
    const rules = compileRuleSet(specs);
    assert.deepEqual([...rules.domains.keys()], ['test-domain', 'wild-domain']);
  });

  const cases: { name: string; files: Record<string, string>; file: string; path: string; reason: RegExp; line?: number }[] = [
    { name: 'invalid YAML', files: { 'a.yaml': 'domain: [x\n' }, file: 'a.yaml', path: '', reason: /^invalid YAML: / },
    { name: 'an empty file', files: { 'a.yaml': '' }, file: 'a.yaml', path: '', reason: /empty/ },
    { name: 'a missing domain', files: { 'a.yaml': 'descriptors: []\n' }, file: 'a.yaml', path: '', reason: /^config file cannot have empty domain$/ },
    {
      name: 'a duplicate domain across files',
      files: { 'a.yaml': 'domain: d\n', 'b.yaml': 'domain: d\n' },
      file: 'b.yaml',
      path: '',
      reason: /^duplicate domain 'd' in config file \(also in a\.yaml\)$/,
    },
    {
      name: 'a descriptor without a key',
      files: { 'a.yaml': 'domain: d\ndescriptors:\n  - value: v\n' },
      file: 'a.yaml',
      path: 'descriptors[0]',
      reason: /^descriptor has empty key$/,
      line: 3,
    },
    {
      name: 'a duplicate descriptor',
      files: { 'a.yaml': 'domain: d\ndescriptors:\n  - key: k\n    value: v\n  - key: k\n    value: v\n' },
      file: 'a.yaml',
      path: 'descriptors[1]',
      reason: /^duplicate descriptor composite key 'd\.k_v'/,
      line: 5,
    },
    {
      name: 'a bad unit',
      files: { 'a.yaml': rule('    rate_limit:\n      unit: fortnight\n      requests_per_unit: 1\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limit.unit',
      reason: /^invalid rate limit unit 'fortnight'/,
      line: 5,
    },
    {
      name: 'a rate without a unit',
      files: { 'a.yaml': rule('    rate_limit:\n      requests_per_unit: 1\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limit',
      reason: /^invalid rate limit unit ''/,
    },
    {
      name: 'unlimited together with a rate',
      files: { 'a.yaml': rule('    rate_limit:\n      unlimited: true\n      unit: day\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limit.unit',
      reason: /^should not specify rate limit unit when unlimited$/,
    },
    {
      name: 'a negative number',
      files: { 'a.yaml': rule('    rate_limit:\n      unit: day\n      requests_per_unit: -5\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limit.requests_per_unit',
      reason: /^must not be negative, found -5$/,
    },
    {
      name: 'a number beyond uint32',
      files: { 'a.yaml': rule('    rate_limit:\n      unit: day\n      requests_per_unit: 4294967296\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limit.requests_per_unit',
      reason: /^must be at most 4294967295/,
    },
    {
      name: 'a fraction',
      files: { 'a.yaml': rule('    rate_limit:\n      unit: day\n      requests_per_unit: 1.5\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limit.requests_per_unit',
      reason: /^expected a whole number, found '1\.5'$/,
    },
    {
      name: 'an unknown field (misspelled rate_limit)',
      files: { 'a.yaml': rule('    ratelimit:\n      unit: day\n') },
      file: 'a.yaml',
      path: 'descriptors[0].ratelimit',
      reason: /^unknown field 'ratelimit'/,
      line: 4,
    },
    {
      name: 'an unknown field inside rate_limit',
      files: { 'a.yaml': rule('    rate_limit:\n      unit: day\n      requestsperunit: 3\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limit.requestsperunit',
      reason: /^unknown field 'requestsperunit'/,
    },
    {
      name: 'a list of non-maps',
      files: { 'a.yaml': 'domain: d\ndescriptors: [a, b, c]\n' },
      file: 'a.yaml',
      path: 'descriptors[0]',
      reason: /^expected a map, found 'a'$/,
    },
    {
      name: 'an empty replaces entry',
      files: { 'a.yaml': rule('    rate_limit:\n      unit: day\n      replaces:\n        - name:\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limit.replaces[0]',
      reason: /^should not have an empty replaces entry$/,
    },
    {
      name: 'replaces naming its own limit',
      files: { 'a.yaml': rule('    rate_limit:\n      unit: day\n      name: self\n      replaces:\n        - name: self\n') },
      file: 'a.yaml',
      path: 'descriptors[0]',
      reason: /^replaces should not contain name of same descriptor$/,
    },
    {
      name: 'a bad algorithm',
      files: { 'a.yaml': rule('    rate_limit:\n      unit: day\n      algorithm: leaky\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limit.algorithm',
      reason: /^invalid algorithm 'leaky'/,
    },
    {
      name: 'a capacity on a fixed window',
      files: { 'a.yaml': rule('    rate_limit:\n      unit: day\n      requests_per_unit: 3\n      algorithm: fixed_window\n      capacity: 9\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limit.capacity',
      reason: /^capacity applies to token_bucket only/,
    },
    {
      name: 'both rate_limit and rate_limits',
      files: { 'a.yaml': rule('    rate_limit: {unit: day}\n    rate_limits: [{unit: second}]\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limits',
      reason: /^use either rate_limit or rate_limits, not both$/,
    },
    {
      name: 'two limits with one unit in rate_limits',
      files: { 'a.yaml': rule('    rate_limits:\n      - {unit: second, requests_per_unit: 1}\n      - {unit: second, requests_per_unit: 2}\n') },
      file: 'a.yaml',
      path: 'descriptors[0].rate_limits[1]',
      reason: /^two limits per 'second' in one rule/,
    },
    {
      name: 'share_threshold without a wildcard',
      files: { 'a.yaml': 'domain: d\ndescriptors:\n  - key: k\n    value: v\n    share_threshold: true\n' },
      file: 'a.yaml',
      path: 'descriptors[0].share_threshold',
      reason: /^share_threshold can only be used with wildcard values/,
    },
    {
      name: 'a duplicate map key',
      files: { 'a.yaml': 'domain: d\ndomain: e\n' },
      file: 'a.yaml',
      path: '',
      reason: /^invalid YAML: Map keys must be unique/,
      line: 2,
    },
    {
      name: 'a bad boolean',
      files: { 'a.yaml': rule('    shadow_mode: yes\n') },
      file: 'a.yaml',
      path: 'descriptors[0].shadow_mode',
      reason: /^expected true or false, found 'yes'$/,
    },
  ];

  for (const { name, files, file, path, reason, line } of cases) {
    it(`rejects ${name}, naming file, path and reason`, () => {
      const error = loadError(files);
      assert.equal(error.file, file);
      assert.equal(error.path, path);
      assert.match(error.reason, reason);
      if (line !== undefined) assert.equal(error.line, line);
      assert.ok(error.message.startsWith(file), 'the message starts with the file name');
    });
  }

  it('accepts units in any case, as the reference upper-cases them', () => {
    for (const unit of ['Minute', 'MINUTE', 'minute']) {
      validateRuleFile('a.yaml', rule(`    rate_limit:\n      unit: ${unit}\n      requests_per_unit: 1\n`));
    }
  });

  it('accepts the reference fields that only feed its stats (detailed_metric, value_to_metric, metadata)', () => {
    validateRuleFile('a.yaml', rule('    detailed_metric: true\n    value_to_metric: true\n    metadata:\n      team: payments\n    rate_limit: {unit: day, requests_per_unit: 1}\n'));
  });
});
