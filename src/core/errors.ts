/** Stable codes: tests and callers branch on these, never on message text. */
export type ErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_SETTINGS'
  | 'ERR_INVALID_REQUEST'
  | 'ERR_NO_CONFIG'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_STORE_AUTH'
  | 'ERR_OVERLOADED'
  | 'ERR_DEADLINE_PASSED';

export abstract class RateLimitError extends Error {
  abstract readonly code: ErrorCode;
  /** True when the same call may succeed later; the gRPC edge answers UNAVAILABLE for these. */
  readonly transient: boolean = false;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A rule file that cannot be loaded: names the file, the path inside it and the reason. */
export class ConfigError extends RateLimitError {
  readonly code = 'ERR_CONFIG';

  constructor(
    readonly file: string,
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown; line?: number },
  ) {
    super(`${file}${options?.line === undefined ? '' : `:${options.line}`}: ${path ? `${path}: ` : ''}${reason}`, options);
    this.line = options?.line;
  }

  readonly line: number | undefined;
}

/** An environment variable or flag with a value ringlimit cannot use. */
export class SettingsError extends RateLimitError {
  readonly code = 'ERR_SETTINGS';

  constructor(readonly setting: string, readonly reason: string) {
    super(`${setting}: ${reason}`);
  }
}

/** A request that can never succeed as sent; `field` names the offending request field. */
export class InvalidRequestError extends RateLimitError {
  readonly code = 'ERR_INVALID_REQUEST';

  constructor(readonly field: string, readonly reason: string) {
    super(`${field}: ${reason}`);
  }
}

/** No rule set has loaded yet (the first load failed); a good reload clears it. */
export class NoConfigLoadedError extends RateLimitError {
  readonly code = 'ERR_NO_CONFIG';
  override readonly transient = true;

  constructor() {
    super('no rate limit configuration loaded');
  }
}

/** A store (shard) that did not answer. */
export class StoreUnavailableError extends RateLimitError {
  readonly code = 'ERR_STORE_UNAVAILABLE';
  override readonly transient = true;

  constructor(readonly shard: string, options?: { cause?: unknown }) {
    super(`bucket store '${shard}' is unavailable${options?.cause === undefined ? '' : `: ${errorMessage(options.cause)}`}`, options);
  }
}

/** Too many calls are being decided at once: this one is refused at once rather than answered late. */
export class OverloadedError extends RateLimitError {
  readonly code = 'ERR_OVERLOADED';
  override readonly transient = true;

  constructor(readonly inFlight: number) {
    super(`overloaded: ${inFlight} calls are being decided already; retry or let the proxy apply its failure mode`);
  }
}

/**
 * The call's deadline passed while it waited its turn (behind the commit in flight on its
 * buckets): its caller has gone, so it is not decided, consumes nothing and leaves no fallback debt.
 */
export class DeadlinePassedError extends RateLimitError {
  readonly code = 'ERR_DEADLINE_PASSED';
  override readonly transient = true;

  constructor(waitedMs: number) {
    super(`the deadline passed after ${Math.round(waitedMs)} ms waiting for the buckets' commit in flight; not decided`);
  }
}

/** A shard refused our credentials: retrying cannot help, so start-up stops. */
export class StoreAuthError extends RateLimitError {
  readonly code = 'ERR_STORE_AUTH';

  constructor(readonly shard: string, readonly redactedUrl: string, options?: { cause?: unknown }) {
    super(`shard '${shard}' (${redactedUrl}) refused the credentials: ${errorMessage(options?.cause)}`, options);
  }
}

/** Message of any thrown value, for logs and statuses. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
