import type { BucketState } from '../core';

/** What one limit says about one request's hits. Pure data, produced by the algorithms here. */
export interface LimitDecision {
  readonly allowed: boolean;
  /** Whole requests left after this decision (never negative). */
  readonly remaining: number;
  /** Time until the bucket is full again (token bucket) or the window ends (fixed window). */
  readonly resetAfterMs: number;
  /**
   * State to store when the request is admitted, or when this limit itself denied it
   * (a fixed window counts denied hits). Absent: nothing to write.
   */
  readonly next: BucketState | undefined;
  /** When the stored record may be forgotten. Meaningful only with `next`. */
  readonly expireAtMs: number;
}
