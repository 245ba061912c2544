import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, TIME_UNITS, type Algorithm, type TimeUnit } from '../core';
import type { RuleFlags } from './rule-set';
import { YamlNodeReader } from './yaml-node-reader';

/** One `rate_limit` block (or one item of `rate_limits`) as written, after type checks. */
export interface LimitSpec {
  readonly at: YamlNodeReader;
  readonly unit: TimeUnit | undefined;
  readonly requestsPerUnit: number;
  readonly unlimited: boolean;
  readonly name: string;
  readonly replaces: readonly string[];
  readonly algorithm: Algorithm;
  readonly capacity: number | undefined;
}

/** A limit that is not `unlimited`, so it has a unit. */
export type RatedLimitSpec = LimitSpec & { readonly unit: TimeUnit };

export interface DescriptorSpec extends RuleFlags {
  readonly at: YamlNodeReader;
  readonly key: string;
  /** Undefined for a key-only rule ('' counts as absent, as in the reference). */
  readonly value: string | undefined;
  readonly limits: readonly RatedLimitSpec[];
  readonly descriptors: readonly DescriptorSpec[];
}

export interface DomainSpec {
  readonly file: string;
  readonly at: YamlNodeReader;
  readonly domain: string;
  readonly descriptors: readonly DescriptorSpec[];
}

const DOMAIN_FIELDS = ['domain', 'descriptors'];
/** `metadata` is accepted for drop-in compatibility; it only feeds RESPONSE_DYNAMIC_METADATA upstream. */
const DESCRIPTOR_FIELDS = [
  'key', 'value', 'rate_limit', 'rate_limits', 'descriptors', 'shadow_mode', 'quota_mode',
  'detailed_metric', 'value_to_metric', 'share_threshold', 'metadata',
];
const LIMIT_FIELDS = ['unit', 'requests_per_unit', 'unlimited', 'name', 'replaces', 'algorithm', 'capacity'];
const ALGORITHMS: readonly Algorithm[] = ['token_bucket', 'fixed_window'];

/** Parses and type-checks one rule file; the first problem found throws a ConfigError. */
export function validateRuleFile(file: string, text: string): DomainSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { schema: 'failsafe', lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const parseError = doc.errors[0];
  if (parseError !== undefined) {
    throw new ConfigError(file, '', `invalid YAML: ${parseError.message}`, { line: lines.linePos(parseError.pos[0]).line });
  }
  const root = new YamlNodeReader(file, lines, doc.contents, '');
  if (root.isEmpty()) root.fail('the file is empty; a rule file needs a domain');
  const fields = root.fields(DOMAIN_FIELDS);
  const domain = fields.get('domain')?.string() ?? '';
  if (domain === '') (fields.get('domain') ?? root).fail('config file cannot have empty domain');
  const descriptors = (fields.get('descriptors')?.items() ?? []).map(readDescriptor);
  return { file, at: root, domain, descriptors };
}

function readDescriptor(at: YamlNodeReader): DescriptorSpec {
  const fields = at.fields(DESCRIPTOR_FIELDS);
  const key = fields.get('key')?.string() ?? '';
  if (key === '') (fields.get('key') ?? at).fail('descriptor has empty key');
  const valueText = fields.get('value')?.string() ?? '';
  const value = valueText === '' ? undefined : valueText;
  const single = fields.get('rate_limit');
  const several = fields.get('rate_limits');
  if (single !== undefined && several !== undefined) several.fail('use either rate_limit or rate_limits, not both');
  const limits = single !== undefined ? [readLimit(single)] : (several?.items() ?? []).map(readLimit);
  if (several !== undefined) checkSeveralLimits(several, limits);
  const shareThreshold = fields.get('share_threshold')?.bool() ?? false;
  if (shareThreshold && !value?.includes('*')) {
    fields.get('share_threshold')?.fail(`share_threshold can only be used with wildcard values (containing '*'), but found key '${key}_${value ?? ''}'`);
  }
  const metadata = fields.get('metadata');
  if (metadata !== undefined && !metadata.isEmpty()) metadata.fields('any');
  return {
    at,
    key,
    value,
    limits: limits.filter(isRated),
    unlimited: limits.some((limit) => limit.unlimited),
    replaces: limits.flatMap((limit) => limit.replaces),
    shadowMode: fields.get('shadow_mode')?.bool() ?? false,
    quotaMode: fields.get('quota_mode')?.bool() ?? false,
    detailedMetric: fields.get('detailed_metric')?.bool() ?? false,
    valueToMetric: fields.get('value_to_metric')?.bool() ?? false,
    shareThreshold,
    descriptors: (fields.get('descriptors')?.items() ?? []).map(readDescriptor),
  };
}

function isRated(limit: LimitSpec): limit is RatedLimitSpec {
  return !limit.unlimited && limit.unit !== undefined;
}

function readLimit(at: YamlNodeReader): LimitSpec {
  const fields = at.fields(LIMIT_FIELDS);
  const unlimited = fields.get('unlimited')?.bool() ?? false;
  const unitField = fields.get('unit');
  const unitText = unitField?.string() ?? '';
  const unit = TIME_UNITS.find((candidate) => candidate === unitText.toLowerCase());
  if (unlimited && unit !== undefined) unitField?.fail('should not specify rate limit unit when unlimited');
  if (!unlimited && unit === undefined) {
    (unitField ?? at).fail(`invalid rate limit unit '${unitText}' (expected one of ${TIME_UNITS.join(', ')})`);
  }
  const algorithmField = fields.get('algorithm');
  const algorithmText = algorithmField?.string() ?? 'token_bucket';
  const algorithm = ALGORITHMS.find((candidate) => candidate === algorithmText);
  if (algorithm === undefined) algorithmField?.fail(`invalid algorithm '${algorithmText}' (expected ${ALGORITHMS.join(' or ')})`);
  const requestsPerUnit = fields.get('requests_per_unit')?.uint32() ?? 0;
  const capacityField = fields.get('capacity');
  const capacity = capacityField?.uint32();
  if (capacityField !== undefined) {
    if (unlimited) capacityField.fail('should not specify capacity when unlimited');
    if (algorithm === 'fixed_window') capacityField.fail('capacity applies to token_bucket only; a fixed window admits requests_per_unit per window');
    if (requestsPerUnit === 0 && capacity !== 0) capacityField.fail('a limit with requests_per_unit 0 never refills, so its capacity must be 0');
  }
  const name = fields.get('name')?.string() ?? '';
  const replaces = (fields.get('replaces')?.items() ?? []).map((item) => {
    const replaced = item.fields(['name']).get('name')?.string() ?? '';
    if (replaced === '') item.fail('should not have an empty replaces entry');
    return replaced;
  });
  return { at, unit, requestsPerUnit, unlimited, name, replaces, algorithm: algorithm ?? 'token_bucket', capacity };
}

function checkSeveralLimits(at: YamlNodeReader, limits: readonly LimitSpec[]): void {
  if (limits.length === 0) at.fail('rate_limits needs at least one limit');
  const seenUnits = new Set<TimeUnit>();
  for (const limit of limits) {
    if (limit.unlimited) limit.at.fail('unlimited belongs in rate_limit, not in a rate_limits list');
    if (limit.unit === undefined) continue;
    if (seenUnits.has(limit.unit)) limit.at.fail(`two limits per '${limit.unit}' in one rule; keep the stricter one`);
    seenUnits.add(limit.unit);
  }
}
