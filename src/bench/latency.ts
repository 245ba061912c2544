import { build, type Histogram } from 'hdr-histogram-js';
import type { LoadResult } from './load-types';

/** A histogram of call latencies in microseconds, from 1 µs to a minute, 3 significant digits. */
export function latencyHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** A load's result from its counts and its latency histogram, which it frees. */
export function loadResult(generator: LoadResult['generator'], counts: { requests: number; errors: number; lateAnswers: number; seconds: number }, histogram: Histogram): LoadResult {
  const result: LoadResult = {
    generator,
    ...counts,
    requestsPerSecond: counts.requests / counts.seconds,
    p50Ms: histogram.getValueAtPercentile(50) / 1000,
    p99Ms: histogram.getValueAtPercentile(99) / 1000,
    p999Ms: histogram.getValueAtPercentile(99.9) / 1000,
  };
  histogram.destroy();
  return result;
}
