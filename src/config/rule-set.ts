import type { NamedLimit } from '../core';

export type RuleLimit = NamedLimit;

/** A `*` pattern on a descriptor value, split once at load so matching allocates nothing. */
export interface ValuePattern {
  readonly text: string;
  readonly parts: readonly string[];
}

/** How a rule behaves beyond its limits; the same in the validated spec and the compiled rule. */
export interface RuleFlags {
  readonly unlimited: boolean;
  /** Names of limits this rule switches off when both apply to one request. */
  readonly replaces: readonly string[];
  readonly shadowMode: boolean;
  readonly quotaMode: boolean;
  readonly detailedMetric: boolean;
  readonly valueToMetric: boolean;
  /** Wildcard matches share one bucket (named by the pattern) instead of one per value. */
  readonly shareThreshold: boolean;
}

/** One compiled descriptor rule. Immutable; shared by every request while its RuleSet is current. */
export interface RuleNode extends RuleFlags {
  readonly key: string;
  /** Exact value or `*` pattern; undefined for a key-only rule. */
  readonly value: string | undefined;
  /** `domain.key_value.subkey`, as envoyproxy/ratelimit names rules in stats and /rlconfig. */
  readonly fullKey: string;
  readonly limits: readonly RuleLimit[];
  readonly children: RuleLevel;
}

export interface WildcardRule {
  readonly pattern: ValuePattern;
  readonly node: RuleNode;
}

/** The rules at one depth, indexed the way matching looks them up. */
export interface RuleLevel {
  /** key → value → rule. */
  readonly exact: ReadonlyMap<string, ReadonlyMap<string, RuleNode>>;
  /** key → wildcard rules in config order (the first match wins). */
  readonly wildcards: ReadonlyMap<string, readonly WildcardRule[]>;
  readonly keyOnly: ReadonlyMap<string, RuleNode>;
  readonly isEmpty: boolean;
}

export interface DomainRules {
  readonly domain: string;
  readonly file: string;
  readonly root: RuleLevel;
  /** Every rule, depth first in config order (for `ringlimit check` and /rlconfig). */
  readonly nodes: readonly RuleNode[];
}

/** A whole, validated configuration. Swapped atomically on reload, never mutated. */
export interface RuleSet {
  readonly domains: ReadonlyMap<string, DomainRules>;
  readonly files: readonly string[];
}
