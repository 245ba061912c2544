/*
 * What Envoy's rate_limits actions produce for a request, for the actions our artefacts use
 * (envoy/envoy.yaml, envoy/istio/*.yaml): the descriptors Envoy would send to ringlimit.
 */

export interface EnvoyAction {
  readonly generic_key?: { readonly descriptor_value: string; readonly descriptor_key?: string };
  readonly remote_address?: Record<string, never>;
  readonly request_headers?: { readonly header_name: string; readonly descriptor_key: string; readonly skip_if_absent?: boolean };
}

export interface EnvoyRateLimit {
  readonly actions: readonly EnvoyAction[];
}

/** A request as the filter sees it: pseudo-headers (`:path`) and headers, lower-case, and the client address. */
export interface SampleRequest {
  readonly headers: Readonly<Record<string, string>>;
  readonly remoteAddress: string;
}

export type Entries = readonly (readonly [string, string])[];

/**
 * One descriptor per rate_limits entry whose actions all produce an entry; as in Envoy, a
 * request_headers action on an absent header drops its whole descriptor (unless skip_if_absent,
 * which drops only that entry).
 */
export function descriptorsFor(rateLimits: readonly EnvoyRateLimit[], request: SampleRequest): Entries[] {
  const descriptors: Entries[] = [];
  for (const { actions } of rateLimits) {
    const entries: (readonly [string, string])[] = [];
    let produced = true;
    for (const action of actions) {
      if (action.generic_key !== undefined) entries.push([action.generic_key.descriptor_key ?? 'generic_key', action.generic_key.descriptor_value]);
      else if (action.remote_address !== undefined) entries.push(['remote_address', request.remoteAddress]);
      else if (action.request_headers !== undefined) {
        const value = request.headers[action.request_headers.header_name];
        if (value !== undefined) entries.push([action.request_headers.descriptor_key, value]);
        else if (action.request_headers.skip_if_absent !== true) produced = false;
      } else throw new Error(`action not covered: ${JSON.stringify(action)}`);
    }
    if (produced && entries.length > 0) descriptors.push(entries);
  }
  return descriptors;
}

/** The first route of envoy.yaml's virtual hosts whose prefix matches the path, as Envoy picks it. */
export function routeFor<T extends { match: { prefix: string } }>(routes: readonly T[], path: string): T {
  const route = routes.find((candidate) => path.startsWith(candidate.match.prefix));
  if (route === undefined) throw new Error(`no route for ${path}`);
  return route;
}
