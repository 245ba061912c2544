import { Server, ServerCredentials } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as HEALTH_PROTO_PATH } from 'grpc-health-check';
import type { Logger } from 'pino';
import { tlsMode, type ServerTls } from '../../core';
import type { RateLimitServiceServer } from '../../generated/envoy/service/ratelimit/v3/rls';
import { PROTO_ROOT, RLS_PROTO_FILES } from './proto-files';
import { RLS_SERVICE_DEFINITION } from './rls-service';

/** Health service names answered: overall, envoyproxy/ratelimit's name, and the RLS service. */
export const HEALTH_SERVICE_NAMES: readonly string[] = ['', 'ratelimit', 'envoy.service.ratelimit.v3.RateLimitService'];

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly rls: RateLimitServiceServer;
  readonly logger: Logger;
  /** TLS (and mTLS with a client CA); absent = plaintext. */
  readonly tls?: ServerTls | undefined;
  /** Largest message accepted; grpc-js answers RESOURCE_EXHAUSTED beyond it. */
  readonly maxMessageBytes?: number | undefined;
}

/** grpc-js server carrying RLS v3, grpc.health.v1 and server reflection (v1 and v1alpha). */
export class GrpcServer {
  private readonly server: Server;
  private readonly health: HealthImplementation;
  private readonly logger: Logger;
  private readonly host: string;
  private readonly port: number;
  private readonly credentials: ServerCredentials;
  private readonly transport: string;

  constructor(options: GrpcServerOptions) {
    this.host = options.host;
    const { tls } = options;
    this.transport = tlsMode(tls);
    this.credentials =
      tls === undefined ? ServerCredentials.createInsecure() : ServerCredentials.createSsl(tls.clientCa ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.clientCa !== undefined);
    this.port = options.port;
    this.logger = options.logger.child({ component: 'grpc-server' });
    this.server = new Server({ 'grpc.max_concurrent_streams': 1000, 'grpc.max_receive_message_length': options.maxMessageBytes ?? 1_048_576 });
    this.server.addService(RLS_SERVICE_DEFINITION, options.rls);
    this.health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICE_NAMES.map((name) => [name, 'NOT_SERVING'])));
    this.health.addToServer(this.server);
    const described = loadSync([...RLS_PROTO_FILES, HEALTH_PROTO_PATH], { includeDirs: [PROTO_ROOT], keepCase: true });
    new ReflectionService(described).addToServer(this.server);
  }

  /** Binds and resolves with the bound port (useful with port 0). */
  start(): Promise<number> {
    return new Promise((resolvePort, reject) => {
      this.server.bindAsync(`${this.host}:${this.port}`, this.credentials, (error, port) => {
        if (error !== null) {
          reject(error);
          return;
        }
        this.logger.info({ host: this.host, port, transport: this.transport }, 'gRPC server listening');
        resolvePort(port);
      });
    });
  }

  setServing(serving: boolean): void {
    for (const name of HEALTH_SERVICE_NAMES) this.health.setStatus(name, serving ? 'SERVING' : 'NOT_SERVING');
  }

  /** Stops accepting calls, lets in-flight calls finish, and cuts them off after `graceMs`. */
  stop(graceMs: number): Promise<void> {
    return new Promise((resolveStop) => {
      const deadline = setTimeout(() => {
        this.logger.warn({ graceMs }, 'in-flight calls did not finish in time; cancelling them');
        this.server.forceShutdown();
        resolveStop();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(deadline);
        resolveStop();
      });
    });
  }
}
