import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { SampledWarnings } from '../../../src/server/sampled-warnings';

function capturingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

describe('SampledWarnings', () => {
  it('logs the first of a kind at once, then one per interval with how many were left out', async () => {
    const { logger, lines } = capturingLogger();
    let now = 0;
    const warnings = new SampledWarnings(logger, 10_000, () => now);
    for (let call = 0; call < 1000; call++) warnings.warn('ERR_OVERLOADED', { err: 'overloaded' }, 'ShouldRateLimit failed');
    warnings.warn('ERR_STORE_UNAVAILABLE', { err: 'shard down' }, 'ShouldRateLimit failed');
    now = 10_000;
    warnings.warn('ERR_OVERLOADED', { err: 'overloaded' }, 'ShouldRateLimit failed');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      lines.map((line) => [line.kind, line.suppressedSinceLast]),
      [
        ['ERR_OVERLOADED', undefined],
        ['ERR_STORE_UNAVAILABLE', undefined],
        ['ERR_OVERLOADED', 999],
      ],
    );
  });
});
