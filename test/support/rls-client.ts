import { credentials, Metadata, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import {
  RateLimitServiceClient,
  type RateLimitRequest,
  type RateLimitResponse,
} from '../../src/generated/envoy/service/ratelimit/v3/rls';
import { RateLimitUnit } from '../../src/generated/envoy/type/v3/ratelimit_unit';

export interface DescriptorInput {
  readonly entries: readonly (readonly [string, string])[];
  readonly limit?: { readonly requests_per_unit: number; readonly unit: RateLimitUnit };
  readonly hits_addend?: number;
}

/** A grpc-js RLS client that calls the way Envoy does: a deadline on every call (20 ms by default in Envoy). */
export class RlsTestClient {
  private readonly client: RateLimitServiceClient;

  /** Plaintext unless `channelCredentials` (TLS) are given; `host` is what TLS checks the certificate against. */
  constructor(port: number, channelCredentials: ChannelCredentials = credentials.createInsecure(), host = '127.0.0.1') {
    this.client = new RateLimitServiceClient(`${host}:${port}`, channelCredentials);
  }

  call(domain: string, descriptors: readonly DescriptorInput[], hitsAddend = 0, deadlineMs = 2000): Promise<RateLimitResponse> {
    return this.send(request(domain, descriptors, hitsAddend), deadlineMs);
  }

  send(message: RateLimitRequest, deadlineMs = 2000, requestId?: string): Promise<RateLimitResponse> {
    const metadata = new Metadata();
    metadata.set('x-envoy-expected-rq-timeout-ms', String(deadlineMs));
    if (requestId !== undefined) metadata.set('x-request-id', requestId);
    return new Promise((resolveCall, reject) => {
      this.client.shouldRateLimit(message, metadata, { deadline: Date.now() + deadlineMs }, (error, response) => {
        if (error !== null) reject(error);
        else resolveCall(response);
      });
    });
  }

  /** Resolves with the gRPC error a call fails with; fails if it succeeds. */
  async callError(message: RateLimitRequest): Promise<ServiceError> {
    try {
      await this.send(message);
    } catch (error) {
      return error as ServiceError;
    }
    throw new Error('expected the call to fail');
  }

  close(): void {
    this.client.close();
  }
}

export function request(domain: string, descriptors: readonly DescriptorInput[], hitsAddend = 0): RateLimitRequest {
  return {
    domain,
    hits_addend: hitsAddend,
    descriptors: descriptors.map((descriptor) => ({
      entries: descriptor.entries.map(([key, value]) => ({ key, value })),
      limit: descriptor.limit === undefined ? undefined : { ...descriptor.limit },
      hits_addend: descriptor.hits_addend,
    })),
  };
}

/** Shorthand for a descriptor: d(['key2', 'x'], ['subkey', 'y']). */
export function d(...entries: (readonly [string, string])[]): DescriptorInput {
  return { entries };
}

export { RateLimitUnit };
