import { InvalidRequestError, MAX_UINT32, type NamedLimit, type RateLimitQuery } from '../core';
import { overrideBucketKey, ruleBucketKey } from '../bucket/bucket-key';
import type { DomainRules } from '../config/rule-set';
import { matchDescriptor } from '../matcher/match-descriptor';

/** One limit of one descriptor, with the bucket that enforces it. */
export interface PlannedLimit {
  readonly limit: NamedLimit;
  readonly bucketKey: string;
  /** The full key of the rule it comes from (`domain.key_value`); absent for request-defined limits. */
  readonly rule?: string | undefined;
}

/** What the engine must do for one request descriptor. */
export type DescriptorPlan =
  | { readonly kind: 'no_limit' }
  | { readonly kind: 'unlimited' }
  | {
      readonly kind: 'limited';
      readonly limits: readonly PlannedLimit[];
      readonly hits: number;
      readonly shadowMode: boolean;
      readonly quotaMode: boolean;
      /** The rule's full key when it asks for per-rule metrics (detailed_metric). */
      readonly metricRule?: string | undefined;
    };

const NO_LIMIT: DescriptorPlan = Object.freeze({ kind: 'no_limit' });
const UNLIMITED: DescriptorPlan = Object.freeze({ kind: 'unlimited' });

interface Candidate {
  readonly plan: DescriptorPlan;
  readonly replaces: readonly string[];
}

/**
 * Matches every descriptor of the query against its domain's rules, then applies `replaces`
 * across the whole request, as envoyproxy/ratelimit's constructLimitsToCheck does. An unknown
 * domain is not an error: every descriptor gets no limit.
 */
export function planDescriptors(query: RateLimitQuery, domain: DomainRules | undefined): DescriptorPlan[] {
  if (domain === undefined) return query.descriptors.map(() => NO_LIMIT);
  const requestHits = query.hits === 0 ? 1 : query.hits;
  const candidates = query.descriptors.map((descriptor, index): Candidate => {
    const hits = descriptor.hits ?? requestHits;
    if (!Number.isSafeInteger(hits) || hits < 0 || hits > MAX_UINT32) {
      throw new InvalidRequestError(`descriptors[${index}].hits_addend`, `must be a whole number from 0 to ${MAX_UINT32}`);
    }
    const { override } = descriptor;
    if (override !== undefined) {
      const limit: NamedLimit = { ...override, capacity: override.requestsPerUnit, algorithm: 'token_bucket', name: '' };
      const bucketKey = overrideBucketKey(query.domain, descriptor.entries, override);
      return { plan: { kind: 'limited', limits: [{ limit, bucketKey }], hits, shadowMode: false, quotaMode: false }, replaces: [] };
    }
    const matched = matchDescriptor(domain.root, descriptor.entries);
    if (matched === undefined) return { plan: NO_LIMIT, replaces: [] };
    const { node, bucketEntries } = matched;
    if (node.unlimited) return { plan: UNLIMITED, replaces: node.replaces };
    const limits = node.limits.map((limit) => ({ limit, bucketKey: ruleBucketKey(query.domain, bucketEntries, limit.unit), rule: node.fullKey }));
    const metricRule = node.detailedMetric ? node.fullKey : undefined;
    return {
      plan: { kind: 'limited', limits, hits, shadowMode: node.shadowMode, quotaMode: node.quotaMode, metricRule },
      replaces: node.replaces,
    };
  });
  if (!candidates.some((candidate) => candidate.replaces.length > 0)) return candidates.map((candidate) => candidate.plan);
  const replaced = new Set(candidates.flatMap((candidate) => candidate.replaces));
  return candidates.map(({ plan }) => {
    if (plan.kind !== 'limited') return plan;
    const limits = plan.limits.filter(({ limit }) => limit.name === '' || !replaced.has(limit.name));
    if (limits.length === plan.limits.length) return plan;
    return limits.length === 0 ? NO_LIMIT : { ...plan, limits };
  });
}
