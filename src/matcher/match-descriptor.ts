import type { DescriptorEntry } from '../core';
import type { RuleLevel, RuleNode, ValuePattern } from '../config/rule-set';

/*
 * envoyproxy/ratelimit's GetLimit walk, over precompiled levels:
 * - per entry, an exact key+value rule wins over a wildcard rule (first in config order), which
 *   wins over the key-only rule;
 * - a rule's limit applies only if it matched the LAST entry (request depth = rule depth);
 * - no backtracking: once an exact rule is taken, its key-only sibling is not tried deeper down.
 */

export interface MatchedRule {
  readonly node: RuleNode;
  /**
   * The entries that name the bucket: the request's own values, except where a share_threshold
   * wildcard rule matched, whose pattern stands in for the value so all matches share one bucket.
   */
  readonly bucketEntries: readonly DescriptorEntry[];
}

export function matchDescriptor(root: RuleLevel, entries: readonly DescriptorEntry[]): MatchedRule | undefined {
  let level = root;
  let sharedEntries: DescriptorEntry[] | undefined;
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index] as DescriptorEntry;
    const found = findRule(level, entry);
    if (found === undefined) return undefined;
    if (found.shareThreshold) {
      sharedEntries ??= entries.slice();
      sharedEntries[index] = { key: entry.key, value: found.value ?? entry.value };
    }
    if (index === entries.length - 1) {
      return found.limits.length > 0 || found.unlimited
        ? { node: found, bucketEntries: sharedEntries ?? entries }
        : undefined;
    }
    if (found.children.isEmpty) return undefined;
    level = found.children;
  }
  return undefined;
}

function findRule(level: RuleLevel, entry: DescriptorEntry): RuleNode | undefined {
  const exact = level.exact.get(entry.key)?.get(entry.value);
  if (exact !== undefined) return exact;
  const wildcards = level.wildcards.get(entry.key);
  if (wildcards !== undefined) {
    for (const rule of wildcards) if (matchesPattern(rule.pattern, entry.value)) return rule.node;
  }
  return level.keyOnly.get(entry.key);
}

/** `*` matches any run of characters, including none; the other parts must appear in order. */
export function matchesPattern(pattern: ValuePattern, value: string): boolean {
  const { parts } = pattern;
  const first = parts[0] ?? '';
  const last = parts[parts.length - 1] ?? '';
  if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false;
  let position = first.length;
  const end = value.length - last.length;
  for (let index = 1; index < parts.length - 1; index++) {
    const part = parts[index] as string;
    const found = value.indexOf(part, position);
    if (found === -1 || found + part.length > end) return false;
    position = found + part.length;
  }
  return true;
}
