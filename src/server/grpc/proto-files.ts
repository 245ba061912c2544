import { resolve } from 'node:path';

/** Our .proto files; this module is compiled to build/src/server/grpc, four levels below the root. */
export const PROTO_ROOT = resolve(__dirname, '../../../../proto');

/** The files gRPC reflection describes; their imports are resolved from PROTO_ROOT. */
export const RLS_PROTO_FILES: readonly string[] = ['envoy/service/ratelimit/v3/rls.proto'];
