import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RateLimitDecider } from '../grpc/rls-service';
import {
  listOverridesHandler,
  prewarmHandler,
  removeOverrideHandler,
  requireAdminToken,
  resetHandler,
  setOverrideHandler,
  type AdminApi,
} from './admin-routes';
import { bucketStatusHandler, rateHandler, type BucketApi } from './bucket-routes';
import type { HttpHandler, HttpRoutes } from './http-types';
import { jsonHandler } from './json-route';
import { healthcheckHandler, healthzHandler, livezHandler, rlconfigHandler, type HealthReport } from './status-routes';

export interface HttpRouteDeps {
  readonly limiter: RateLimitDecider & BucketApi;
  readonly controlPlane: AdminApi;
  readonly metrics: { serve(request: IncomingMessage, response: ServerResponse): void };
  readonly health: () => Promise<HealthReport>;
  readonly describeRules: () => readonly string[] | undefined;
  readonly adminToken: string | undefined;
}

/** Every HTTP endpoint, by path and method. */
export function httpRoutes(deps: HttpRouteDeps): HttpRoutes {
  const admin = (handler: HttpHandler): HttpHandler => requireAdminToken(deps.adminToken, handler);
  const table: [string, string, HttpHandler][] = [
    ['/rate', 'POST', rateHandler(deps.limiter)],
    ['/bucket/status', 'GET', bucketStatusHandler(deps.limiter)],
    ['/json', 'POST', jsonHandler(deps.limiter)],
    ['/rlconfig', 'GET', rlconfigHandler(deps.describeRules)],
    ['/healthz', 'GET', healthzHandler(deps.health)],
    ['/healthcheck', 'GET', healthcheckHandler(deps.health)],
    ['/livez', 'GET', livezHandler],
    [
      '/metrics',
      'GET',
      async ({ raw }) => {
        deps.metrics.serve(raw.request, raw.response);
        return undefined;
      },
    ],
    ['/admin/overrides', 'GET', admin(listOverridesHandler(deps.controlPlane))],
    ['/admin/overrides', 'POST', admin(setOverrideHandler(deps.controlPlane))],
    ['/admin/overrides', 'DELETE', admin(removeOverrideHandler(deps.controlPlane))],
    ['/admin/prewarm', 'POST', admin(prewarmHandler(deps.controlPlane))],
    ['/admin/reset', 'POST', admin(resetHandler(deps.controlPlane))],
  ];
  const routes = new Map<string, Map<string, HttpHandler>>();
  for (const [path, method, handler] of table) {
    const methods = routes.get(path) ?? new Map<string, HttpHandler>();
    methods.set(method, handler);
    routes.set(path, methods);
  }
  return routes;
}
