import type { DescriptorSpec, DomainSpec } from './validate-rules';
import type { DomainRules, RuleLevel, RuleNode, RuleSet, WildcardRule } from './rule-set';

/** Turns validated files into one immutable RuleSet; cross-rule checks throw ConfigError. */
export function compileRuleSet(specs: readonly DomainSpec[]): RuleSet {
  const domains = new Map<string, DomainRules>();
  for (const spec of specs) {
    if (domains.has(spec.domain)) {
      spec.at.fail(`duplicate domain '${spec.domain}' in config file (also in ${domains.get(spec.domain)?.file ?? '?'})`);
    }
    const nodes: RuleNode[] = [];
    const root = compileLevel(spec.descriptors, spec.domain, nodes);
    domains.set(spec.domain, { domain: spec.domain, file: spec.file, root, nodes });
  }
  return { domains, files: specs.map((spec) => spec.file) };
}

function compileLevel(specs: readonly DescriptorSpec[], parentKey: string, nodes: RuleNode[]): RuleLevel {
  const exact = new Map<string, Map<string, RuleNode>>();
  const wildcards = new Map<string, WildcardRule[]>();
  const keyOnly = new Map<string, RuleNode>();
  const seen = new Set<string>();
  for (const spec of specs) {
    const fullKey = `${parentKey}.${spec.value === undefined ? spec.key : `${spec.key}_${spec.value}`}`;
    if (seen.has(fullKey)) {
      spec.at.fail(`duplicate descriptor composite key '${fullKey}' (several limits on one rule go in rate_limits)`);
    }
    seen.add(fullKey);
    checkReplaces(spec);
    const node = compileNode(spec, fullKey, nodes);
    if (spec.value === undefined) keyOnly.set(spec.key, node);
    else if (spec.value.includes('*')) {
      const rules = wildcards.get(spec.key) ?? [];
      rules.push({ pattern: { text: spec.value, parts: spec.value.split('*') }, node });
      wildcards.set(spec.key, rules);
    } else {
      const byValue = exact.get(spec.key) ?? new Map<string, RuleNode>();
      byValue.set(spec.value, node);
      exact.set(spec.key, byValue);
    }
  }
  return { exact, wildcards, keyOnly, isEmpty: specs.length === 0 };
}

function compileNode(spec: DescriptorSpec, fullKey: string, nodes: RuleNode[]): RuleNode {
  const placeholder: RuleNode[] = [];
  const node: RuleNode = {
    key: spec.key,
    value: spec.value,
    fullKey,
    limits: spec.limits.map((limit) => ({
      requestsPerUnit: limit.requestsPerUnit,
      unit: limit.unit,
      capacity: limit.capacity ?? limit.requestsPerUnit,
      algorithm: limit.algorithm,
      name: limit.name,
    })),
    unlimited: spec.unlimited,
    replaces: spec.replaces,
    shadowMode: spec.shadowMode,
    quotaMode: spec.quotaMode,
    detailedMetric: spec.detailedMetric,
    valueToMetric: spec.valueToMetric,
    shareThreshold: spec.shareThreshold,
    children: compileLevel(spec.descriptors, fullKey, placeholder),
  };
  nodes.push(node, ...placeholder);
  return node;
}

function checkReplaces(spec: DescriptorSpec): void {
  const ownNames = new Set(spec.limits.map((limit) => limit.name).filter((name) => name !== ''));
  if (spec.replaces.some((name) => ownNames.has(name))) spec.at.fail('replaces should not contain name of same descriptor');
}
