import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailableError, type StoreObserver } from '../../core';
import type { ShardClient } from './redis-client';

/** How long a failed shard is skipped before a request tries it again. */
const SHARD_RETRY_MS = 1000;
/** First pause before retrying a failed command; doubles per attempt, with jitter. */
const FIRST_BACKOFF_MS = 4;
/** Retries per call at most (about 4 + 8 + 16 ms of pauses): beyond that the shard is down, not blinking. */
const MAX_RETRIES = 3;
/** A retry is not worth starting with less time than this left. */
const MIN_ATTEMPT_MS = 2;

/** Errors not worth retrying: ioredis's own commandTimeout (the command was sent and may still run) and the shard's answers other than "not now". */
function isRetryable(error: unknown): boolean {
  if (error instanceof OutOfTimeError || error instanceof ConnectionLostError || !(error instanceof Error)) return false;
  if (/Command timed out/.test(error.message)) return false;
  return error.name !== 'ReplyError' || /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN)/.test(error.message);
}

export interface ShardCallOptions {
  /** What the command does, for the round-trip metric ('commit', 'load', 'ping', …). */
  readonly operation: string;
  /** Real milliseconds the caller can wait, retries included. */
  readonly timeoutMs: number;
  /** A health probe: runs even while the shard's breaker is open, and never retries. */
  readonly probe?: boolean;
  /** Runs even while the shard's breaker is open, retrying as usual. */
  readonly evenIfDown?: boolean | undefined;
}

/**
 * Commands on shards, each bounded by its caller's time budget. A failure that may be
 * transient (a reset connection, a shard reconnecting) is retried up to MAX_RETRIES times with
 * exponential backoff and jitter, within the budget. A shard whose command failed is skipped for SHARD_RETRY_MS
 * (its callers fall back at once instead of each spending their budget on it), until a probe
 * or a late answer shows it is back. A command that outlives its caller's budget is left to
 * finish, and until it does the shard is skipped too: a paused shard then holds one in-doubt
 * command, not one per caller. Its result still opens or closes the breaker. All of this runs
 * on real time (performance.now()), like the network it guards, not on the engine's clock.
 */
export class ShardCalls {
  private readonly downUntilMs = new Map<ShardClient, number>();
  /** Commands that outlived their caller's budget and have not come back yet, per shard. */
  private readonly overdue = new Map<ShardClient, number>();
  private readonly pending = new WeakMap<ShardClient, Set<(error: Error) => void>>();

  constructor(private readonly observer: StoreObserver | undefined) {}

  async run<T>(shard: string, client: ShardClient, command: (client: ShardClient) => Promise<T>, options: ShardCallOptions): Promise<T> {
    const giveUpAt = performance.now() + options.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      // Only a first attempt defers to the breaker: this call's own retries are what may close it.
      if (attempt === 0 && options.probe !== true && options.evenIfDown !== true && this.isDown(client)) {
        throw new StoreUnavailableError(shard, { cause: new Error('failed recently; retrying after a pause') });
      }
      const startedAt = performance.now();
      try {
        const result = await this.attempt(client, command, giveUpAt - performance.now());
        this.observer?.roundTrip(shard, options.operation, (performance.now() - startedAt) / 1000, true);
        return result;
      } catch (error) {
        this.observer?.roundTrip(shard, options.operation, (performance.now() - startedAt) / 1000, false);
        const backoffMs = FIRST_BACKOFF_MS * 2 ** attempt * (0.5 + Math.random() / 2);
        if (options.probe === true || attempt >= MAX_RETRIES || !isRetryable(error) || performance.now() + backoffMs + MIN_ATTEMPT_MS > giveUpAt) throw new StoreUnavailableError(shard, { cause: error });
        this.observer?.retry(shard);
        await sleep(backoffMs);
      }
    }
  }

  /** Failed recently, or still owes an answer its caller stopped waiting for: callers fall back rather than pile on. */
  isDown(client: ShardClient): boolean {
    if ((this.overdue.get(client) ?? 0) > 0) return true;
    const downUntilMs = this.downUntilMs.get(client);
    return downUntilMs !== undefined && performance.now() < downUntilMs;
  }

  private attempt<T>(client: ShardClient, command: (client: ShardClient) => Promise<T>, timeoutMs: number): Promise<T> {
    const running = command(client);
    const pending = this.pendingOn(client);
    let late = false;
    /** Given up at a connection's close: never sent again, so it can only time out, which says nothing of the new connection. */
    let lost = false;
    const settled = (): void => {
      if (!late || lost) return;
      const count = (this.overdue.get(client) ?? 1) - 1;
      if (count > 0) this.overdue.set(client, count);
      else this.overdue.delete(client);
    };
    running.then(
      () => {
        this.downUntilMs.delete(client);
        settled();
      },
      () => {
        if (!lost) this.downUntilMs.set(client, performance.now() + SHARD_RETRY_MS);
        settled();
      },
    );
    let answered = false;
    let timer: NodeJS.Timeout | undefined;
    let abandon: ((error: Error) => void) | undefined;
    const outOfTime = new Promise<never>((_, reject) => {
      abandon = (error) => {
        if (answered || late) return;
        late = true;
        lost = error instanceof ConnectionLostError;
        if (!lost) this.overdue.set(client, (this.overdue.get(client) ?? 0) + 1);
        reject(error);
      };
      timer = setTimeout(() => {
        // Timers run before the event loop reads its sockets: on a busy loop the answer may be
        // waiting unread. Reading first (setImmediate runs after the poll phase) keeps a late
        // loop from being taken for a late shard.
        // The error (and its stack) only for a command really given up: under load most timers
        // fire with the answer already read, and building one each time cost 0.5 µs a call.
        setImmediate(() => {
          if (!answered) abandon?.(new OutOfTimeError(timeoutMs));
        });
      }, Math.max(0, timeoutMs));
    });
    const gaveUp = abandon as (error: Error) => void;
    pending.add(gaveUp);
    return Promise.race([running, outOfTime]).finally(() => {
      answered = true;
      pending.delete(gaveUp);
      clearTimeout(timer);
    });
  }

  /**
   * The give-up functions of the attempts waiting on a client. When its connection closes, the
   * commands it had sent are in doubt (they may have run) and are not sent again (the clients
   * do not resend after a reconnect): their callers stop waiting at once and fall back instead
   * of spending the rest of their budget on a reconnect.
   */
  private pendingOn(client: ShardClient): Set<(error: Error) => void> {
    let pending = this.pending.get(client);
    if (pending === undefined) {
      const created = new Set<(error: Error) => void>();
      client.on('close', () => {
        for (const giveUp of [...created]) giveUp(new ConnectionLostError());
      });
      this.pending.set(client, created);
      pending = created;
    }
    return pending;
  }
}

/** The shard's connection closed with the command sent and unanswered: it may have run. */
class ConnectionLostError extends Error {
  constructor() {
    super('the connection closed before the shard answered; the command is in doubt');
    this.name = 'ConnectionLostError';
  }
}

/** The caller's budget ran out before the shard answered; the command may still run. */
class OutOfTimeError extends Error {
  constructor(timeoutMs: number) {
    super(`no answer within the caller's ${Math.round(timeoutMs)} ms`);
    this.name = 'OutOfTimeError';
  }
}
