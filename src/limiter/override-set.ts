import type { CapacityOverride, NamedLimit } from '../core';
import { bucketGroup } from '../bucket/bucket-key';
import type { DescriptorPlan, PlannedLimit } from './descriptor-plan';

/**
 * The operators' temporary limits (admin API), applied to planned limits. A bucket target is a
 * bucket id (a /rate bucket's) or a descriptor's bucket group (`domain|key=value…`, every limit of it); a
 * rule target names a rule's full key (as /rlconfig shows it) and changes every bucket of that
 * rule. An expired override is simply not applied: the configured limit is back without anyone
 * removing it.
 */
export class OverrideSet {
  private readonly byBucket = new Map<string, CapacityOverride>();
  private readonly byRule = new Map<string, CapacityOverride>();

  replace(overrides: readonly CapacityOverride[]): void {
    this.byBucket.clear();
    this.byRule.clear();
    for (const override of overrides) {
      if (override.target.rule !== undefined) this.byRule.set(override.target.rule, override);
      else this.byBucket.set(override.target.bucket, override);
    }
  }

  get size(): number {
    return this.byBucket.size + this.byRule.size;
  }

  /** The override in force for a planned limit at `nowMs`, if any. */
  find(planned: PlannedLimit, nowMs: number): CapacityOverride | undefined {
    const override =
      this.byBucket.get(planned.bucketKey) ??
      this.byBucket.get(bucketGroup(planned.bucketKey)) ??
      (planned.rule === undefined ? undefined : this.byRule.get(planned.rule));
    if (override === undefined || nowMs >= override.expiresAtMs) return undefined;
    return override.unit === undefined || override.unit === planned.limit.unit ? override : undefined;
  }

  /** The plans with every overridden limit changed; the same array when nothing applies. */
  apply(plans: DescriptorPlan[], nowMs: number): DescriptorPlan[] {
    if (this.size === 0) return plans;
    return plans.map((plan) => {
      if (plan.kind !== 'limited') return plan;
      let changed = false;
      const limits = plan.limits.map((planned) => {
        const override = this.find(planned, nowMs);
        if (override === undefined) return planned;
        changed = true;
        return { ...planned, limit: overridden(planned.limit, override) };
      });
      return changed ? { ...plan, limits } : plan;
    });
  }
}

/**
 * The limit with the override's values. A rate override without a capacity also moves the
 * capacity when it was the default (capacity = rate), so a doubled rate also doubles the burst.
 */
function overridden(limit: NamedLimit, override: CapacityOverride): NamedLimit {
  const requestsPerUnit = override.requestsPerUnit ?? limit.requestsPerUnit;
  const capacity = override.capacity ?? (limit.capacity === limit.requestsPerUnit ? requestsPerUnit : limit.capacity);
  return { ...limit, requestsPerUnit, capacity };
}
