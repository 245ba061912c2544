import type { ShardHealth } from '../../core';
import type { HttpHandler } from './http-types';

/** What /healthz reports; `serving` is what the gRPC health service answers too. */
export interface HealthReport {
  readonly serving: boolean;
  readonly region: string;
  readonly config: { readonly loaded: boolean; readonly domains: number; readonly lastError?: string | undefined };
  readonly store: { readonly kind: string; readonly ok: boolean; readonly shards: readonly ShardHealth[] };
  readonly shuttingDown: boolean;
}

/** GET /healthz: 200 only when the config is loaded and every shard answers; the detail either way. */
export function healthzHandler(report: () => Promise<HealthReport>): HttpHandler {
  return async () => {
    const health = await report();
    return { status: health.serving ? 200 : 503, json: health };
  };
}

/** GET /healthcheck, as envoyproxy/ratelimit answers it: 200 "OK", or 500 with an empty body. */
export function healthcheckHandler(report: () => Promise<HealthReport>): HttpHandler {
  return async () => ((await report()).serving ? { status: 200, text: 'OK' } : { status: 500, text: '' });
}

/** GET /rlconfig: the loaded rules, one line per limit (envoyproxy/ratelimit's dump format). */
export function rlconfigHandler(describe: () => readonly string[] | undefined): HttpHandler {
  return async () => {
    const lines = describe();
    return lines === undefined ? { status: 503, json: { error: 'no rule configuration is loaded yet' } } : { status: 200, text: lines.map((line) => `${line}\n`).join('') };
  };
}

/**
 * GET /livez: 200 while the process serves HTTP at all. Unlike /healthz it does not depend on the
 * config or the shards, so a liveness probe does not restart instances during a Redis outage
 * (they keep answering from their fallback buckets).
 */
export const livezHandler: HttpHandler = async () => ({ status: 200, json: { alive: true } });
