import { credentials, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as HEALTH_PROTO_PATH } from 'grpc-health-check';

/** A grpc-js client of the service at `path` (e.g. grpc.health.v1.Health) on a loopback port. */
export function serviceClient(root: GrpcObject, path: string, port: number) {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  const Client = node as ServiceClientConstructor;
  return new Client(`127.0.0.1:${port}`, credentials.createInsecure());
}

export type HealthStatus = 'SERVING' | 'NOT_SERVING' | 'UNKNOWN' | 'SERVICE_UNKNOWN';

/** grpc.health.v1.Health/Check, as a load balancer or Kubernetes probe sends it. */
export function healthCheck(port: number, service: string): Promise<HealthStatus> {
  const definition = loadSync(HEALTH_PROTO_PATH, { keepCase: true, enums: String });
  const client = serviceClient(loadPackageDefinition(definition), 'grpc.health.v1.Health', port);
  return new Promise((resolveStatus, reject) => {
    (client as unknown as { Check(request: object, done: (error: Error | null, reply: { status: HealthStatus }) => void): void }).Check(
      { service },
      (error, reply) => {
        client.close();
        if (error !== null) reject(error);
        else resolveStatus(reply.status);
      },
    );
  });
}
