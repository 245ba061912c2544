import assert from 'node:assert/strict';
import { loadPackageDefinition, type ClientDuplexStream } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';
import { FileDescriptorProto } from 'ts-proto-descriptors';
import { MemoryBucketStore } from '../../src/store/memory-store';
import { FakeClock } from '../support/fake-clock';
import { healthCheck, serviceClient } from '../support/grpc-health';
import { REPO_ROOT } from '../support/paths';
import { fixtureText } from '../support/rules';
import { delegatingStore } from '../support/store-doubles';
import { startTestServer, type TestServer } from '../support/test-server';

const REFLECTION_PROTO_DIR = join(REPO_ROOT, 'node_modules', '@grpc', 'reflection', 'build', 'proto');

interface ReflectionReply {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

/** One request on the reflection stream, as grpcurl sends it. */
function reflect(version: 'v1' | 'v1alpha', port: number, message: Record<string, string>): Promise<ReflectionReply> {
  const definition = loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [REFLECTION_PROTO_DIR], keepCase: true });
  const client = serviceClient(loadPackageDefinition(definition), `grpc.reflection.${version}.ServerReflection`, port);
  return new Promise((resolveReply, reject) => {
    const stream = (client as unknown as { ServerReflectionInfo(): ClientDuplexStream<object, ReflectionReply> }).ServerReflectionInfo();
    stream.on('data', (reply: ReflectionReply) => {
      resolveReply(reply);
      stream.end();
      client.close();
    });
    stream.on('error', reject);
    stream.write(message);
  });
}


async function eventually(check: () => Promise<boolean>, budgetMs = 3000): Promise<void> {
  const startedMs = Date.now();
  while (!(await check())) {
    if (Date.now() - startedMs > budgetMs) throw new Error(`not seen within ${budgetMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('gRPC server reflection', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'basic.yaml': fixtureText('basic.yaml') });
  });
  after(() => server.stop());

  for (const version of ['v1', 'v1alpha'] as const) {
    it(`lists the services (grpcurl list, reflection ${version})`, async () => {
      const reply = await reflect(version, server.port, { list_services: '' });
      const names = reply.list_services_response?.service.map((service) => service.name) ?? [];
      assert.ok(names.includes('envoy.service.ratelimit.v3.RateLimitService'), names.join(', '));
      assert.ok(names.includes('grpc.health.v1.Health'), names.join(', '));
    });
  }

  it('describes ShouldRateLimit with every file it imports, so no proto files are needed (grpcurl describe)', async () => {
    const reply = await reflect('v1alpha', server.port, { file_containing_symbol: 'envoy.service.ratelimit.v3.RateLimitService' });
    const files = (reply.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) => FileDescriptorProto.decode(bytes));
    const rls = files.find((file) => file.package === 'envoy.service.ratelimit.v3');
    assert.ok(rls, `the RLS file is returned (got ${files.map((file) => file.name).join(', ')})`);
    const method = rls.service[0]?.method[0];
    assert.equal(method?.name, 'ShouldRateLimit');
    assert.equal(method?.inputType, '.envoy.service.ratelimit.v3.RateLimitRequest');
    assert.equal(method?.outputType, '.envoy.service.ratelimit.v3.RateLimitResponse');
    const returned = new Set(files.map((file) => file.name));
    for (const file of files) {
      for (const dependency of file.dependency) assert.ok(returned.has(dependency), `${file.name} imports ${dependency}, which is returned too`);
    }
  });
});

describe('gRPC health', () => {
  it('is SERVING for "", "ratelimit" and the RLS service once a config is loaded', async () => {
    const server = await startTestServer({ 'basic.yaml': fixtureText('basic.yaml') });
    try {
      for (const service of ['', 'ratelimit', 'envoy.service.ratelimit.v3.RateLimitService']) {
        assert.equal(await healthCheck(server.port, service), 'SERVING', service);
      }
    } finally {
      await server.stop();
    }
  });

  it('is NOT_SERVING while no config has loaded, and SERVING once a good one does', async () => {
    const server = await startTestServer({ 'basic.yaml': 'domain: [broken\n' });
    try {
      assert.equal(await healthCheck(server.port, ''), 'NOT_SERVING');
      await server.writeRules('basic.yaml', fixtureText('basic.yaml'));
      await eventually(async () => (await healthCheck(server.port, '')) === 'SERVING');
    } finally {
      await server.stop();
    }
  });

  it('is NOT_SERVING while the store does not answer', async () => {
    const clock = new FakeClock();
    const memory = new MemoryBucketStore({ clock, maxBuckets: 100 });
    let storeUp = true;
    const store = delegatingStore(memory, {
      ping: async () => {
        if (!storeUp) throw new Error('store down');
      },
    });
    const server = await startTestServer({ 'basic.yaml': fixtureText('basic.yaml') }, {}, { store, healthCheckIntervalMs: 20 });
    try {
      assert.equal(await healthCheck(server.port, ''), 'SERVING');
      storeUp = false;
      await eventually(async () => (await healthCheck(server.port, '')) === 'NOT_SERVING');
      storeUp = true;
      await eventually(async () => (await healthCheck(server.port, '')) === 'SERVING');
    } finally {
      await server.stop();
    }
  });
});
