import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp, type App, type AppOverrides } from '../../src/app';
import { loadSettings, type Environment } from '../../src/settings/settings';
import { FakeClock } from './fake-clock';
import { makeTempDir } from './paths';
import { RlsTestClient } from './rls-client';

/** An HTTP answer, its body parsed as JSON when it is JSON. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly json: Record<string, unknown>;
  readonly text: string;
}

export interface TestServer {
  readonly app: App;
  readonly port: number;
  readonly httpPort: number;
  /** A real HTTP request over loopback; a non-string body is sent as JSON. */
  http(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpAnswer>;
  readonly client: RlsTestClient;
  readonly clock: FakeClock;
  readonly configDir: string;
  writeRules(fileName: string, yaml: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The real server (createApp → gRPC on 127.0.0.1:0) with its rules in a fresh temp directory,
 * a fake clock, and a grpc-js client connected over loopback.
 */
export async function startTestServer(
  rules: Record<string, string>,
  env: Environment = {},
  overrides: AppOverrides = {},
): Promise<TestServer> {
  const configDir = await makeTempDir();
  for (const [name, yaml] of Object.entries(rules)) await writeFile(join(configDir, name), yaml);
  const clock = new FakeClock();
  const settings = loadSettings({ GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', CONFIG_DIR: configDir, SHUTDOWN_GRACE_MS: '2000', ...env });
  const app = createApp(settings, { clock, logger: pino({ level: 'silent' }), ...overrides });
  const { grpcPort, httpPort } = await app.start();
  const client = new RlsTestClient(grpcPort);
  return {
    app,
    port: grpcPort,
    httpPort,
    http: (method, path, body, headers) => httpCall(httpPort, method, path, body, headers),
    client,
    clock,
    configDir,
    writeRules: (fileName, yaml) => writeFile(join(configDir, fileName), yaml),
    async stop() {
      client.close();
      await app.stop();
      await rm(configDir, { recursive: true, force: true });
    },
  };
}

export async function httpCall(port: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const init: RequestInit = { method, headers: { ...(body === undefined || typeof body === 'string' ? {} : { 'content-type': 'application/json' }), ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(`http://127.0.0.1:${port}${path}`, init);
  const text = await response.text();
  let json: Record<string, unknown> = {};
  if ((response.headers.get('content-type') ?? '').startsWith('application/json')) json = JSON.parse(text) as Record<string, unknown>;
  return { status: response.status, headers: response.headers, json, text };
}
