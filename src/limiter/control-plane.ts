import {
  InvalidRequestError,
  MAX_UINT32,
  TIME_UNITS,
  type CapacityOverride,
  type Clock,
  type DescriptorEntry,
  type OverrideStore,
  type OverrideTarget,
  type TimeUnit,
} from '../core';
import { apiBucketKey, descriptorGroup, ruleBucketKey } from '../bucket/bucket-key';
import type { RateLimiter } from './rate-limiter';

/** What an admin call names: a /rate bucket, a descriptor's buckets, or (overrides only) a rule. */
export type AdminTarget =
  | { readonly bucketId: string }
  | { readonly descriptor: { readonly domain: string; readonly entries: readonly DescriptorEntry[] } }
  | { readonly rule: string };

export interface OverrideRequest {
  readonly target: AdminTarget;
  readonly capacity?: number | undefined;
  readonly requestsPerUnit?: number | undefined;
  /** Only the limit of this unit ('second', …); absent = every limit of the target. */
  readonly unit?: string | undefined;
  /** How long the override stays in force. */
  readonly ttlMs: number;
}

/** Longest override: a temporary change is not a config change. */
const MAX_OVERRIDE_TTL_MS = 7 * 86_400_000;

/**
 * The admin operations: temporary capacity/rate overrides (kept in the override store, so every
 * instance applies them; each instance re-reads them every second), pre-warming buckets into
 * the local copy, and resetting buckets to full.
 */
export class ControlPlane {
  constructor(
    private readonly engine: RateLimiter,
    private readonly overrides: OverrideStore,
    private readonly clock: Clock,
  ) {}

  async setOverride(request: OverrideRequest): Promise<CapacityOverride> {
    const { capacity, requestsPerUnit, ttlMs } = request;
    if (capacity === undefined && requestsPerUnit === undefined) throw new InvalidRequestError('capacity', 'give capacity, requests_per_unit or both');
    if (capacity !== undefined && (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > MAX_UINT32)) {
      throw new InvalidRequestError('capacity', `must be a whole number from 1 to ${MAX_UINT32}`);
    }
    if (requestsPerUnit !== undefined && (!Number.isFinite(requestsPerUnit) || requestsPerUnit <= 0 || requestsPerUnit > MAX_UINT32)) {
      throw new InvalidRequestError('requests_per_unit', 'must be a number above 0');
    }
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_OVERRIDE_TTL_MS) throw new InvalidRequestError('ttl_seconds', 'must be above 0 and at most 7 days');
    const unit = request.unit?.toLowerCase();
    if (unit !== undefined && !(TIME_UNITS as readonly string[]).includes(unit)) throw new InvalidRequestError('unit', `must be one of ${TIME_UNITS.join(', ')}`);
    const override: CapacityOverride = {
      target: overrideTargetOf(request.target),
      ...(capacity === undefined ? {} : { capacity }),
      ...(requestsPerUnit === undefined ? {} : { requestsPerUnit }),
      ...(unit === undefined ? {} : { unit: unit as TimeUnit }),
      expiresAtMs: this.clock.nowMs() + ttlMs,
    };
    await this.overrides.put(override, this.clock.nowMs());
    await this.refresh();
    return override;
  }

  async removeOverride(target: AdminTarget): Promise<boolean> {
    const removed = await this.overrides.remove(overrideTargetOf(target));
    await this.refresh();
    return removed;
  }

  listOverrides(): Promise<CapacityOverride[]> {
    return this.overrides.list(this.clock.nowMs());
  }

  /** Applies the overrides in the store to this instance's engine. */
  async refresh(): Promise<void> {
    this.engine.setOverrides(await this.overrides.list(this.clock.nowMs()));
  }

  /** Returns how many of the targets' buckets exist. */
  prewarm(targets: readonly AdminTarget[]): Promise<number> {
    return this.engine.prewarm(targets.flatMap(bucketKeysOf));
  }

  /** Returns how many bucket ids were reset. */
  async reset(target: AdminTarget): Promise<number> {
    const keys = bucketKeysOf(target);
    await this.engine.resetBuckets(keys);
    return keys.length;
  }
}

function overrideTargetOf(target: AdminTarget): OverrideTarget {
  if ('rule' in target) {
    if (target.rule === '') throw new InvalidRequestError('rule', 'must not be empty');
    return { rule: target.rule };
  }
  if ('bucketId' in target) return { bucket: apiBucketKey(checkedBucketId(target.bucketId)) };
  return { bucket: descriptorGroup(checkedDomain(target.descriptor.domain), target.descriptor.entries) };
}

/** Every bucket a target can have: a /rate bucket's one, or a descriptor's one per unit. */
function bucketKeysOf(target: AdminTarget): string[] {
  if ('rule' in target) throw new InvalidRequestError('rule', 'buckets are named by bucket_id or descriptor here; a rule has too many to list');
  if ('bucketId' in target) return [apiBucketKey(checkedBucketId(target.bucketId))];
  const domain = checkedDomain(target.descriptor.domain);
  return TIME_UNITS.map((unit) => ruleBucketKey(domain, target.descriptor.entries, unit));
}

function checkedBucketId(bucketId: string): string {
  if (bucketId === '') throw new InvalidRequestError('bucket_id', 'must not be empty');
  return bucketId;
}

function checkedDomain(domain: string): string {
  if (domain === '') throw new InvalidRequestError('descriptor.domain', 'must not be empty');
  return domain;
}
