import { Server, ServerCredentials } from '@grpc/grpc-js';
import { RateLimitResponse, RateLimitResponse_Code, RateLimitServiceService, type RateLimitServiceServer } from '../generated/envoy/service/ratelimit/v3/rls';

/**
 * The ceiling: a grpc-js server that answers every ShouldRateLimit with a fixed OK, configured
 * as ringlimit's own server is. Whatever ringlimit costs beyond it is ringlimit's.
 */
export function startNoopServer(port: number): Promise<{ port: number; server: Server }> {
  const server = new Server({ 'grpc.max_concurrent_streams': 1000 });
  const answer = RateLimitResponse.fromPartial({ overall_code: RateLimitResponse_Code.OK });
  const handlers: RateLimitServiceServer = { shouldRateLimit: (_call, callback) => callback(null, answer) };
  server.addService(RateLimitServiceService, handlers);
  return new Promise((resolveStart, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error, bound) => {
      if (error !== null) reject(error);
      else resolveStart({ port: bound, server });
    });
  });
}
