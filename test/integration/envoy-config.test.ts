import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadRuleDir } from '../../src/config/load-rule-dir';
import { matchDescriptor } from '../../src/matcher/match-descriptor';
import { descriptorsFor, type EnvoyRateLimit, type SampleRequest } from '../support/envoy-actions';
import { REPO_ROOT } from '../support/paths';

/*
 * No Envoy binary runs here, so envoy/envoy.yaml is checked statically: its filter's domain must
 * exist in config/, and every rate_limits action list must produce descriptors that a rule limits.
 */

/** What Envoy's actions produce for one sample request. */
const SAMPLE: SampleRequest = { remoteAddress: '203.0.113.9', headers: { 'x-api-key': 'k1', ':path': '/v1/chat/completions' } };

describe('envoy/envoy.yaml against config/', () => {
  const envoy = parse(readFileSync(join(REPO_ROOT, 'envoy', 'envoy.yaml'), 'utf8'));
  const manager = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const filter = manager.http_filters.find((candidate: { name: string }) => candidate.name === 'envoy.filters.http.ratelimit').typed_config;

  it('points the rate-limit filter at an HTTP/2 cluster on ringlimit’s gRPC port, RLS v3', () => {
    assert.equal(filter.rate_limit_service.transport_api_version, 'V3');
    const clusterName = filter.rate_limit_service.grpc_service.envoy_grpc.cluster_name;
    const cluster = envoy.static_resources.clusters.find((candidate: { name: string }) => candidate.name === clusterName);
    assert.ok(cluster, `cluster ${clusterName} exists`);
    assert.ok(cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config.http2_protocol_options);
    assert.equal(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value, 8081);
  });

  it('produces only descriptors that a rule of its domain limits', async () => {
    const rules = await loadRuleDir(join(REPO_ROOT, 'config'));
    const domain = rules.domains.get(filter.domain);
    assert.ok(domain, `domain ${filter.domain} is in config/`);
    const routes = manager.route_config.virtual_hosts.flatMap((host: { routes: unknown[] }) => host.routes);
    for (const route of routes) {
      for (const entries of descriptorsFor(route.route.rate_limits as EnvoyRateLimit[], SAMPLE)) {
        const matched = matchDescriptor(domain.root, entries.map(([key, value]) => ({ key, value })));
        assert.ok(matched, `no rule limits ${JSON.stringify(entries)}`);
      }
    }
  });
});
