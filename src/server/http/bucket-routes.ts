import type { BucketRateOutcome, BucketRateRequest } from '../../core';
import type { BucketStatus } from '../../limiter/rate-limiter';
import { HttpError, type HttpHandler, type HttpRequest } from './http-types';
import { fieldsOf } from './json-fields';

/** The engine as POST /rate and GET /bucket/status see it. */
export interface BucketApi {
  rateBucket(request: BucketRateRequest): Promise<BucketRateOutcome>;
  bucketStatus(bucketId: string): Promise<BucketStatus>;
}

/** Longest bucket id accepted: ids are stored as Redis keys on every call. */
const MAX_BUCKET_ID_LENGTH = 512;

/** POST /rate: {bucket_id, capacity, refill_rate, tokens_requested, request_id?} → {allowed, remaining, retry_after_ms, reset_after_ms}. */
export function rateHandler(api: BucketApi): HttpHandler {
  return async (request: HttpRequest) => {
    const body = fieldsOf(await request.jsonBody(), '').only('bucket_id', 'capacity', 'refill_rate', 'tokens_requested', 'request_id');
    const bucketId = body.string('bucket_id');
    if (bucketId.length > MAX_BUCKET_ID_LENGTH) throw new HttpError(400, `bucket_id must be at most ${MAX_BUCKET_ID_LENGTH} characters`, 'bucket_id');
    const header = request.headers['x-request-id'];
    const outcome = await api.rateBucket({
      bucketId,
      capacity: body.number('capacity'),
      refillPerSecond: body.number('refill_rate'),
      tokens: body.optionalNumber('tokens_requested') ?? 1,
      requestId: body.optionalString('request_id') ?? (typeof header === 'string' ? header : undefined),
    });
    return {
      status: 200,
      json: { allowed: outcome.allowed, remaining: outcome.remaining, retry_after_ms: outcome.retryAfterMs, reset_after_ms: outcome.resetAfterMs },
    };
  };
}

/** GET /bucket/status?key=<bucket_id>: the stored record, the limit it is decided by, and its shard. */
export function bucketStatusHandler(api: BucketApi): HttpHandler {
  return async (request: HttpRequest) => {
    const key = request.url.searchParams.get('key');
    if (key === null || key === '') throw new HttpError(400, 'key is required: the bucket_id given to POST /rate', 'key');
    const status = await api.bucketStatus(key);
    return {
      status: 200,
      json: {
        bucket_id: status.bucketId,
        shard: status.placement,
        exists: status.record !== undefined,
        version: status.record?.version ?? 0,
        tokens: status.tokensNow === undefined ? null : Math.floor(status.tokensNow * 1000) / 1000,
        stored_tokens: status.record?.state.tokens ?? null,
        updated_at_ms: status.record?.state.updatedAtMs ?? null,
        capacity: status.limit?.capacity ?? null,
        refill_rate: status.limit?.requestsPerUnit ?? null,
      },
    };
  };
}
