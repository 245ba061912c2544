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
    options.destination,
  );
}
