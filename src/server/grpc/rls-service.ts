import { status as GrpcStatus, type ServerUnaryCall, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { SampledWarnings } from '../sampled-warnings';
import {
  DeadlinePassedError,
  InvalidRequestError,
  RateLimitError,
  errorMessage,
  type Code,
  type DescriptorStatus,
  type RateLimitOutcome,
  type RateLimitQuery,
  type TimeUnit,
} from '../../core';
import { RateLimitUnit } from '../../generated/envoy/type/v3/ratelimit_unit';
import {
  RateLimitRequest,
  RateLimitResponse_Code,
  RateLimitResponse_RateLimit_Unit,
  RateLimitServiceService,
  type RateLimitResponse,
  type RateLimitResponse_DescriptorStatus,
  type RateLimitServiceServer,
} from '../../generated/envoy/service/ratelimit/v3/rls';

/** The engine as the edge sees it. */
export interface RateLimitDecider {
  shouldRateLimit(query: RateLimitQuery): Promise<RateLimitOutcome>;
}

const UNIT_BY_PROTO: ReadonlyMap<number, TimeUnit> = new Map<number, TimeUnit>([
  [RateLimitUnit.SECOND, 'second'],
  [RateLimitUnit.MINUTE, 'minute'],
  [RateLimitUnit.HOUR, 'hour'],
  [RateLimitUnit.DAY, 'day'],
  [RateLimitUnit.WEEK, 'week'],
  [RateLimitUnit.MONTH, 'month'],
  [RateLimitUnit.YEAR, 'year'],
]);

const UNIT_TO_PROTO: Readonly<Record<TimeUnit, RateLimitResponse_RateLimit_Unit>> = {
  second: RateLimitResponse_RateLimit_Unit.SECOND,
  minute: RateLimitResponse_RateLimit_Unit.MINUTE,
  hour: RateLimitResponse_RateLimit_Unit.HOUR,
  day: RateLimitResponse_RateLimit_Unit.DAY,
  week: RateLimitResponse_RateLimit_Unit.WEEK,
  month: RateLimitResponse_RateLimit_Unit.MONTH,
  year: RateLimitResponse_RateLimit_Unit.YEAR,
};

const CODE_TO_PROTO: Readonly<Record<Code, RateLimitResponse_Code>> = {
  OK: RateLimitResponse_Code.OK,
  OVER_LIMIT: RateLimitResponse_Code.OVER_LIMIT,
};

/** RLS v3 wire message (and the call's x-request-id and time left) → engine query. Snake_case proto names stop here. */
export function toQuery(request: RateLimitRequest, requestId?: string, timeBudgetMs?: number): RateLimitQuery {
  return {
    domain: request.domain,
    hits: request.hits_addend,
    requestId,
    timeBudgetMs,
    descriptors: request.descriptors.map((descriptor, index) => {
      const { limit } = descriptor;
      let override;
      if (limit !== undefined) {
        const unit = UNIT_BY_PROTO.get(limit.unit);
        if (unit === undefined) {
          throw new InvalidRequestError(`descriptors[${index}].limit.unit`, `must be one of SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, YEAR (got ${limit.unit})`);
        }
        override = { requestsPerUnit: limit.requests_per_unit, unit };
      }
      return { entries: descriptor.entries, override, hits: descriptor.hits_addend };
    }),
  };
}

function toDescriptorStatus(status: DescriptorStatus): RateLimitResponse_DescriptorStatus {
  const { currentLimit, resetAfterMs } = status;
  return {
    code: CODE_TO_PROTO[status.code],
    current_limit:
      currentLimit === undefined
        ? undefined
        : { name: currentLimit.name, requests_per_unit: currentLimit.requestsPerUnit, unit: UNIT_TO_PROTO[currentLimit.unit] },
    limit_remaining: status.limitRemaining,
    duration_until_reset:
      resetAfterMs === undefined
        ? undefined
        : { seconds: Math.floor(resetAfterMs / 1000), nanos: Math.round(resetAfterMs % 1000) * 1_000_000 },
    quota: undefined,
  };
}

/** Never written to (the encoder only reads it): one for every response. */
const NO_BYTES = Buffer.alloc(0);

/** Engine outcome → RLS v3 wire message. */
export function toResponse(outcome: RateLimitOutcome): RateLimitResponse {
  return {
    overall_code: CODE_TO_PROTO[outcome.overallCode],
    statuses: outcome.statuses.map(toDescriptorStatus),
    response_headers_to_add: outcome.responseHeaders.map((header) => ({ key: header.key, value: header.value, raw_value: NO_BYTES })),
    request_headers_to_add: [],
    raw_body: NO_BYTES,
    dynamic_metadata: undefined,
    quota: undefined,
  };
}

/**
 * Errors are classified once, here. Envoy's failure_mode_deny acts only on an error status, so
 * nothing that failed is ever answered OK or UNKNOWN: bad requests are INVALID_ARGUMENT, transient
 * failures UNAVAILABLE, anything unexpected INTERNAL (and logged).
 */
export function toServiceError(error: unknown, logger: Logger, warnings: SampledWarnings): Partial<ServiceError> {
  if (error instanceof InvalidRequestError) {
    return { code: GrpcStatus.INVALID_ARGUMENT, details: error.message };
  }
  if (error instanceof RateLimitError && error.transient) {
    warnings.warn(error.code, { err: errorMessage(error) }, 'ShouldRateLimit failed');
    return { code: error instanceof DeadlinePassedError ? GrpcStatus.DEADLINE_EXCEEDED : GrpcStatus.UNAVAILABLE, details: error.message };
  }
  logger.error({ err: error }, 'ShouldRateLimit failed unexpectedly');
  return { code: GrpcStatus.INTERNAL, details: `internal error: ${errorMessage(error)}` };
}

/** Real milliseconds until the call's deadline (grpc-timeout); undefined when it has none. */
function timeLeftMs(deadline: Date | number): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** A message that did not decode as a RateLimitRequest: answered INVALID_ARGUMENT, where grpc-js would say INTERNAL. */
export class MalformedRequest {
  constructor(readonly reason: string) {}
}

/** RLS v3 as generated, except that a request that does not decode reaches the handler as a MalformedRequest. */
export const RLS_SERVICE_DEFINITION = {
  shouldRateLimit: {
    ...RateLimitServiceService.shouldRateLimit,
    requestDeserialize: (value: Buffer): RateLimitRequest => {
      try {
        return RateLimitRequest.decode(value);
      } catch (error) {
        return new MalformedRequest(errorMessage(error)) as unknown as RateLimitRequest;
      }
    },
  },
} as const;

export function createRlsHandlers(options: { decider: RateLimitDecider; logger: Logger }): RateLimitServiceServer {
  const { decider } = options;
  const logger = options.logger.child({ component: 'rls-service' });
  const warnings = new SampledWarnings(logger);
  return {
    shouldRateLimit(call: ServerUnaryCall<RateLimitRequest, RateLimitResponse>, callback: sendUnaryData<RateLimitResponse>) {
      if ((call.request as unknown) instanceof MalformedRequest) {
        const { reason } = call.request as unknown as MalformedRequest;
        callback({ code: GrpcStatus.INVALID_ARGUMENT, details: `the message is not a valid RateLimitRequest: ${reason}` });
        return;
      }
      const timeLeft = timeLeftMs(call.getDeadline());
      // Overloaded, a call can wait past its deadline before it is handled: its caller has gone,
      // and deciding it anyway would only spend the time the next calls need (and consume tokens).
      if (call.cancelled || (timeLeft !== undefined && timeLeft <= 0)) {
        callback({ code: GrpcStatus.DEADLINE_EXCEEDED, details: 'the deadline passed before the call was handled' });
        return;
      }
      let query: RateLimitQuery;
      try {
        const [requestId] = call.metadata.get('x-request-id');
        query = toQuery(call.request, requestId === undefined ? undefined : String(requestId), timeLeft);
      } catch (error) {
        callback(toServiceError(error, logger, warnings));
        return;
      }
      decider.shouldRateLimit(query).then(
        (outcome) => callback(null, toResponse(outcome)),
        (error: unknown) => callback(toServiceError(error, logger, warnings)),
      );
    },
  };
}
