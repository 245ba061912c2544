import type { RuleNode, RuleSet } from './rule-set';

/**
 * One line per limit, in the shape of envoyproxy/ratelimit's /rlconfig dump
 * (`<fullKey>: unit=MINUTE requests_per_unit=20, shadow_mode: false, quota_mode: false`)
 * followed by ringlimit's additions.
 */
export function describeRuleSet(rules: RuleSet): string[] {
  const lines: string[] = [];
  for (const domain of rules.domains.values()) {
    for (const node of domain.nodes) lines.push(...describeNode(node));
  }
  return lines;
}

function describeNode(node: RuleNode): string[] {
  const flags = `shadow_mode: ${node.shadowMode}, quota_mode: ${node.quotaMode}`;
  if (node.unlimited) return [`${node.fullKey}: unlimited, ${flags}`];
  return node.limits.map((limit) => {
    const extras = [`algorithm=${limit.algorithm}`];
    if (limit.algorithm === 'token_bucket') extras.push(`capacity=${limit.capacity}`);
    if (limit.name !== '') extras.push(`name=${limit.name}`);
    if (node.replaces.length > 0) extras.push(`replaces=${node.replaces.join('|')}`);
    return `${node.fullKey}: unit=${limit.unit.toUpperCase()} requests_per_unit=${limit.requestsPerUnit}, ${flags}, ${extras.join(' ')}`;
  });
}
