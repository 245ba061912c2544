import { MAX_UINT32, type DescriptorStatus, type HeaderValue } from '../core';

/** Header names, as envoyproxy/ratelimit's LIMIT_LIMIT_HEADER / _REMAINING_ / _RESET_ settings. */
export interface ResponseHeaderNames {
  readonly limit: string;
  readonly remaining: string;
  readonly reset: string;
}

/**
 * The RateLimit-* headers of envoyproxy/ratelimit: taken from the descriptor with the fewest
 * requests remaining (first wins ties); a non-quota OVER_LIMIT status always wins, the last one
 * if several. Descriptors without a current limit are never chosen; with none chosen, no headers.
 */
export function rateLimitHeaders(
  names: ResponseHeaderNames,
  statuses: readonly DescriptorStatus[],
  quotaFlags: readonly boolean[],
): HeaderValue[] {
  let chosen: DescriptorStatus | undefined;
  let fewestRemaining = MAX_UINT32;
  statuses.forEach((status, index) => {
    if (status.currentLimit === undefined) return;
    if (status.code === 'OVER_LIMIT' && quotaFlags[index] !== true) {
      chosen = status;
      fewestRemaining = 0;
    } else if (status.limitRemaining < fewestRemaining) {
      chosen = status;
      fewestRemaining = status.limitRemaining;
    }
  });
  if (chosen?.currentLimit === undefined) return [];
  return [
    { key: names.limit, value: String(chosen.currentLimit.requestsPerUnit) },
    { key: names.remaining, value: String(chosen.limitRemaining) },
    { key: names.reset, value: String(Math.ceil((chosen.resetAfterMs ?? 0) / 1000)) },
  ];
}
