import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadRuleDir } from '../../src/config/load-rule-dir';
import { matchDescriptor } from '../../src/matcher/match-descriptor';
import { descriptorsFor, routeFor, type EnvoyRateLimit, type SampleRequest } from '../support/envoy-actions';
import { REPO_ROOT } from '../support/paths';
import { d, RlsTestClient } from '../support/rls-client';
import { Code } from '../support/status';
import { startTestServer, type TestServer } from '../support/test-server';

/*
 * There is no Docker engine, Kubernetes, Istio or Envoy binary on our machines: these checks read
 * the artefacts (every YAML parses) and fail when one drifts from another — cluster names,
 * ports, service names, the domain, the descriptor keys and the rules themselves.
 */

const read = (...parts: string[]): string => readFileSync(join(REPO_ROOT, ...parts), 'utf8');
const GRPC_PORT = 8081;
const HTTP_PORT = 8080;

/** Parsed YAML, walked by path: the checks themselves say what must be there. */
type Yaml = Record<string, any>;

function documents(...parts: string[]): Yaml[] {
  return parseAllDocuments(read(...parts)).map((document) => {
    assert.deepEqual(document.errors, [], `${parts.join('/')} parses`);
    return document.toJS() as Yaml;
  });
}

const envoy = parse(read('envoy', 'envoy.yaml')) as Yaml;
const manager = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const envoyFilter = manager.http_filters.find((filter: Yaml) => filter.name === 'envoy.filters.http.ratelimit').typed_config;
const istioFiles = readdirSync(join(REPO_ROOT, 'envoy', 'istio')).filter((name) => name.endsWith('.yaml'));
const istio = Object.fromEntries(istioFiles.map((name) => [name, documents('envoy', 'istio', name)])) as Record<string, Yaml[]>;
const k8s = istio['ringlimit.yaml'] as Yaml[];
const ofKind = (kind: string): Yaml => k8s.find((document) => document.kind === kind) as Yaml;
// Compose files use YAML 1.1 merge keys (`<<: *ringlimit`).
const compose = parse(read('docker-compose.yml'), { merge: true }) as Yaml;
const dockerfile = read('Dockerfile');

/** The rate-limit filter and the rate_limits of each EnvoyFilter. */
function istioFilters(): { file: string; filter: Yaml; rateLimits: EnvoyRateLimit[] }[] {
  return istioFiles
    .filter((name) => name.startsWith('envoyfilter-'))
    .map((file) => {
      const patches = (istio[file]?.[0] as Yaml).spec.configPatches as Yaml[];
      const filter = patches.find((patch) => patch.applyTo === 'HTTP_FILTER')?.patch.value.typed_config;
      const rateLimits = patches.find((patch) => patch.applyTo === 'VIRTUAL_HOST')?.patch.value.rate_limits;
      return { file, filter, rateLimits };
    });
}

describe('deployment artefacts agree with each other and with config/', () => {
  it('parses every YAML artefact', () => {
    assert.deepEqual(istioFiles.sort(), ['envoyfilter-gateway.yaml', 'envoyfilter-sidecar.yaml', 'ringlimit.yaml', 'serviceentry-external.yaml']);
    for (const docs of Object.values(istio)) assert.ok(docs.length > 0 && docs.every((doc) => typeof doc.kind === 'string'));
    assert.ok(compose.services);
  });

  it('uses the example config’s domain everywhere, and only descriptors its rules limit', async () => {
    const rules = await loadRuleDir(join(REPO_ROOT, 'config'));
    const sample: SampleRequest = { remoteAddress: '203.0.113.9', headers: { 'x-api-key': 'k1', ':path': '/v1/chat/completions' } };
    const sources: [string, string, EnvoyRateLimit[]][] = [
      ...manager.route_config.virtual_hosts.flatMap((host: Yaml) => host.routes.map((route: Yaml) => ['envoy.yaml', envoyFilter.domain, route.route.rate_limits])),
      ...istioFilters().map(({ file, filter, rateLimits }): [string, string, EnvoyRateLimit[]] => [file, filter.domain, rateLimits]),
    ];
    for (const [file, domainName, rateLimits] of sources) {
      const domain = rules.domains.get(domainName);
      assert.ok(domain, `${file}: domain ${domainName} is in config/`);
      for (const entries of descriptorsFor(rateLimits, sample)) {
        assert.ok(matchDescriptor(domain.root, entries.map(([key, value]) => ({ key, value }))), `${file}: no rule limits ${JSON.stringify(entries)}`);
      }
    }
  });

  it('sets the same filter options in envoy.yaml and the EnvoyFilters', () => {
    for (const { file, filter } of istioFilters()) {
      for (const option of ['domain', 'timeout', 'failure_mode_deny', 'enable_x_ratelimit_headers']) {
        assert.deepEqual(filter[option], envoyFilter[option], `${file}: ${option}`);
      }
      assert.equal(filter.rate_limit_service.transport_api_version, 'V3', file);
    }
  });

  it('points the EnvoyFilters at the ringlimit Service’s gRPC port, and the ServiceEntry at the same port', () => {
    const service = ofKind('Service');
    const grpc = service.spec.ports.find((port: Yaml) => port.name === 'grpc');
    assert.equal(grpc.port, GRPC_PORT);
    assert.equal(grpc.appProtocol, 'grpc', 'Istio must treat it as HTTP/2');
    const cluster = `outbound|${grpc.port}||${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`;
    for (const { file, filter } of istioFilters()) assert.equal(filter.rate_limit_service.grpc_service.envoy_grpc.cluster_name, cluster, file);
    const entry = (istio['serviceentry-external.yaml'] as Yaml[])[0] as Yaml;
    assert.deepEqual(entry.spec.ports, [{ number: GRPC_PORT, name: 'grpc', protocol: 'GRPC' }]);
  });

  it('wires the Deployment to the Service, the rules ConfigMap and the health endpoints', async () => {
    const deployment = ofKind('Deployment');
    const service = ofKind('Service');
    const container = deployment.spec.template.spec.containers[0];
    assert.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels);
    assert.equal(service.metadata.namespace, deployment.metadata.namespace);
    const ports = Object.fromEntries(container.ports.map((port: Yaml) => [port.name, port.containerPort]));
    assert.deepEqual(ports, { grpc: GRPC_PORT, http: HTTP_PORT });
    for (const port of service.spec.ports) assert.ok(port.targetPort in ports, `Service port ${port.name} targets a container port`);
    const env = Object.fromEntries(container.env.map((variable: Yaml) => [variable.name, variable.value]));
    assert.equal(Number(env.GRPC_PORT), GRPC_PORT);
    assert.equal(Number(env.HTTP_PORT), HTTP_PORT);
    assert.equal(container.readinessProbe.httpGet.path, '/healthz');
    assert.equal(container.livenessProbe.httpGet.path, '/livez');
    const mount = container.volumeMounts.find((volume: Yaml) => volume.mountPath === env.CONFIG_DIR);
    const volume = deployment.spec.template.spec.volumes.find((candidate: Yaml) => candidate.name === mount.name);
    const configMap = ofKind('ConfigMap');
    assert.equal(volume.configMap.name, configMap.metadata.name);
    assert.deepEqual(parse(configMap.data['example.yaml']), parse(read('config', 'example.yaml')), 'the ConfigMap holds config/example.yaml');
    assert.equal(deployment.spec.template.spec.securityContext.runAsNonRoot, true);
  });

  it('gives docker-compose two regions whose ringlimits share both shards, and a loadgen profile', () => {
    const services = compose.services as Record<string, Yaml>;
    const redis = Object.keys(services).filter((name) => name.startsWith('redis-'));
    assert.deepEqual(redis.sort(), ['redis-eu-west', 'redis-us-east']);
    for (const region of ['us-east', 'eu-west']) {
      const ringlimit = services[`ringlimit-${region}`] as Yaml;
      assert.equal(ringlimit.environment.REGION, region);
      const shards = String(ringlimit.environment.REDIS_SHARDS).split(',');
      assert.deepEqual(shards.map((shard) => shard.split('=')[1]).sort(), redis.map((name) => `redis://${name}:6379`).sort(), `${region}: the ring spans both shards`);
      assert.equal(Number(ringlimit.environment.GRPC_PORT), GRPC_PORT);
      assert.ok(ringlimit.volumes.includes('./config:/app/config:ro'));
      assert.equal(ringlimit.environment.CONFIG_DIR, '/app/config');
      // envoy.yaml's cluster reaches "ringlimit" and "backend": each region's network must alias them.
      const clusterHosts = envoy.static_resources.clusters.map((cluster: Yaml) => cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address);
      for (const { address } of clusterHosts) {
        const aliased = Object.entries(services).filter(([, service]) => service.networks?.[region]?.aliases?.includes(address));
        assert.equal(aliased.length, 1, `${region}: one service answers as ${address}`);
      }
      const envoyService = services[`envoy-${region}`] as Yaml;
      assert.ok(envoyService.volumes.includes('./envoy/envoy.yaml:/etc/envoy/envoy.yaml:ro'));
      assert.deepEqual(envoyService.networks, [region]);
    }
    const loadgen = Object.values(services).filter((service) => service.profiles?.includes('loadgen'));
    assert.equal(loadgen.length, 2);
    for (const service of loadgen) assert.ok(service.command.includes('-t'), 'bounded in time');
  });

  it('builds a small multi-stage, non-root image that serves on the ports the rest expects', () => {
    const stages = dockerfile.match(/^FROM /gm) ?? [];
    assert.ok(stages.length >= 2, 'multi-stage');
    assert.match(dockerfile, /^FROM node:20-[\w.-]*slim/m, 'Node 20, slim');
    assert.match(dockerfile, /^USER node$/m, 'runs as the unprivileged node user');
    assert.match(dockerfile, new RegExp(`^EXPOSE ${GRPC_PORT} ${HTTP_PORT}$`, 'm'));
    assert.match(dockerfile, /npm prune --omit=dev/, 'no dev dependencies in the image');
    assert.match(dockerfile, /COPY src\/store\/redis\/bucket-commit\.lua/, 'the Lua script read at run time');
    assert.match(dockerfile, /COPY proto \.\/proto/, 'the protos reflection reads');
    assert.match(dockerfile, /^ENTRYPOINT \["node", "build\/src\/main\.js"\]$/m);
    for (const service of ['ringlimit-us-east', 'ringlimit-eu-west']) assert.equal((compose.services[service] as Yaml).image, 'ringlimit:latest');
    assert.equal(ofKind('Deployment').spec.template.spec.containers[0].image, 'ringlimit:latest');
    assert.match(read('.dockerignore'), /^node_modules$/m);
  });
});

describe('Envoy-like client: what envoy.yaml sends for sample HTTP requests, answered by the example rules', function () {
  this.timeout(20_000);
  let server: TestServer;
  let client: RlsTestClient;
  const routes = manager.route_config.virtual_hosts[0].routes as { match: { prefix: string }; route: { rate_limits: EnvoyRateLimit[] } }[];
  /**
   * Envoy waits `timeout` (0.02s) for ringlimit. These tests are about what the rules answer, in
   * runs of up to 80 calls on a runner shared with the rest of the suite, where one stall of the
   * machine outlasts 20 ms: the calls carry a deadline with room for that, and holding answers to
   * Envoy's 20 ms is the subject of the fault and shard-outage tests.
   */
  const envoyTimeoutMs = Number.parseFloat(envoyFilter.timeout) * 1000;
  const deadlineMs = 50 * envoyTimeoutMs;

  before(async () => {
    server = await startTestServer({ 'example.yaml': read('config', 'example.yaml') });
    client = new RlsTestClient(server.port);
    // The first call opens the channel; Envoy keeps one open.
    await client.call('edge', [d(['warm', 'up'])], 0, 2000);
  });
  after(async () => {
    client.close();
    await server.stop();
  });

  async function send(path: string, headers: Record<string, string>, remoteAddress = '203.0.113.9') {
    const descriptors = descriptorsFor(routeFor(routes, path).route.rate_limits, { remoteAddress, headers: { ':path': path, ...headers } });
    return client.call(envoyFilter.domain, descriptors.map((entries) => ({ entries })), 0, deadlineMs);
  }

  it('limits an API key to its burst of 20, then answers OVER_LIMIT naming per_key_burst', async () => {
    const codes = [];
    for (let call = 0; call < 21; call++) codes.push((await send('/v1/items', { 'x-api-key': 'burst-key' })).overall_code);
    assert.deepEqual(codes, [...Array(20).fill(Code.OK), Code.OVER_LIMIT]);
    const last = await send('/v1/items', { 'x-api-key': 'burst-key' });
    assert.equal(last.statuses[1]?.current_limit?.name, 'per_key_burst');
  });

  it('limits chat paths per key to 60 a minute (C + R·T), under the burst refilling at 10 a second', async () => {
    const codes = [];
    for (let second = 0; second < 8; second++) {
      if (second > 0) server.clock.advance(1000);
      for (let call = 0; call < 10; call++) codes.push((await send('/v1/chat/completions', { 'x-api-key': 'chatty' })).overall_code);
    }
    assert.equal(codes.filter((code) => code === Code.OK).length, 60 + 7, 'a bucket of 60 plus 1 a second for 7 seconds');
    const over = await send('/v1/chat/completions', { 'x-api-key': 'chatty' });
    assert.equal(over.statuses[2]?.current_limit?.name, 'chat_per_key');
  });

  it('never limits the internal batch key, and limits requests without a key by client address only', async () => {
    const internal = await send('/v1/items', { 'x-api-key': 'internal-batch' });
    assert.equal(internal.overall_code, Code.OK);
    assert.equal(internal.statuses[1]?.current_limit, undefined, 'unlimited: no limit reported');
    const anonymous = await send('/v1/items', {}, '198.51.100.7');
    assert.equal(anonymous.statuses.length, 1, 'only the remote_address descriptor: the x-api-key actions produced none');
    assert.equal(anonymous.statuses[0]?.current_limit?.requests_per_unit, 50);
  });

  it('counts /checkout in one shared fixed window of 1000 a minute', async () => {
    const first = await send('/checkout', {});
    assert.equal(first.statuses.length, 1);
    assert.equal(first.statuses[0]?.limit_remaining, 999);
    const second = await send('/checkout', {}, '192.0.2.1');
    assert.equal(second.statuses[0]?.limit_remaining, 998, 'shared across clients');
  });
});
