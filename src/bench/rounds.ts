import type { BenchRow } from './bench';

/** A measurement as taken: which round of the bench it belongs to, before any ratio. */
export interface MeasuredRow extends Omit<BenchRow, 'vsNoop' | 'rounds' | 'vsNoopRange'> {
  readonly round: number;
}

/** Throughput (closed loop) or p99 (fixed rate, one in flight) as a multiple of the no-op's, in the same round. */
export function ratioToNoop(row: MeasuredRow, noop: MeasuredRow | undefined): number | undefined {
  if (noop === undefined) return undefined;
  if (row.mode === 'closed-loop') return noop.result.requestsPerSecond > 0 ? row.result.requestsPerSecond / noop.result.requestsPerSecond : undefined;
  return noop.result.p99Ms > 0 ? row.result.p99Ms / noop.result.p99Ms : undefined;
}

/** The figure a row is judged by on its own: throughput for a closed loop, p99 otherwise. */
function ownFigure(row: MeasuredRow): number {
  return row.mode === 'closed-loop' ? row.result.requestsPerSecond : row.result.p99Ms;
}

/** The middle of `values` by `by` (the lower middle for an even count, so that it is one of them); undefined for none. */
export function lowerMedian<T>(values: readonly T[], by: (value: T) => number): T | undefined {
  const sorted = [...values].sort((first, second) => by(first) - by(second));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/**
 * One row per target, workload and mode from rows measured over one or more rounds. Each round's
 * ratio compares a server with the no-op measured seconds before it, so the median of those
 * ratios is what the row reports, with their range; the row's own figures are from the round
 * whose ratio is that median (for the no-op, its median round by its own figure). This machine's
 * speed drifts by up to 2x within minutes: one round's ratio can be far off, the median of a few
 * rarely is.
 */
export function combineRounds(measured: readonly MeasuredRow[]): BenchRow[] {
  const noopOf = (row: MeasuredRow): MeasuredRow | undefined =>
    measured.find((candidate) => candidate.target === 'no-op' && candidate.workload === row.workload && candidate.mode === row.mode && candidate.round === row.round);
  const groups = new Map<string, MeasuredRow[]>();
  for (const row of measured) {
    const key = `${row.target}\n${row.workload}\n${row.mode}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  return [...groups.values()].map((rows) => {
    const rated = rows.map((row) => ({ row, ratio: ratioToNoop(row, noopOf(row)) }));
    const ratios = rated.flatMap(({ ratio }) => (ratio === undefined ? [] : [ratio]));
    const chosen = (ratios.length === rated.length && rows[0]?.target !== 'no-op' ? lowerMedian(rated, ({ ratio }) => ratio ?? 0) : lowerMedian(rated, ({ row }) => ownFigure(row))) as (typeof rated)[number];
    const { round: _round, ...figures } = chosen.row;
    return {
      ...figures,
      vsNoop: chosen.ratio,
      rounds: rows.length,
      vsNoopRange: ratios.length > 1 ? { min: Math.min(...ratios), max: Math.max(...ratios) } : undefined,
    };
  });
}
