import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../settings/settings';

/** The root JSON logger; modules take `logger.child({ component })` from it, never a global. */
export function createLogger(options: { level: LogLevel; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'ringlimit', pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['*.password', '*.authorization', 'authorization', '*.token'], censor: '[redacted]' },
    },
    // Synchronous: pino's default (asynchronous) stdout is flushed at exit by a sonic-boom loop
    // that retries EPIPE forever, so with its reader gone (a log shipper that died) the process
    // never exited on SIGTERM. A synchronous write that fails with EPIPE just stops the logging.
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
