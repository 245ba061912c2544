import type { Logger } from 'pino';

/** How often one kind of warning is written at most. */
const DEFAULT_INTERVAL_MS = 10_000;

/**
 * Warnings about failures that come by the thousand when they come at all (a shard down, an
 * overloaded instance): the first of a kind is logged at once, then at most one per interval,
 * carrying how many were left out since. Logging each one would cost an overloaded instance
 * more CPU than answering; the metrics count every one.
 */
export class SampledWarnings {
  private readonly kinds = new Map<string, { loggedAtMs: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = DEFAULT_INTERVAL_MS,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = this.nowMs();
    const seen = this.kinds.get(kind);
    if (seen !== undefined && now - seen.loggedAtMs < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    this.logger.warn({ ...fields, kind, ...(seen === undefined ? {} : { suppressedSinceLast: seen.suppressed }) }, message);
    this.kinds.set(kind, { loggedAtMs: now, suppressed: 0 });
  }
}
