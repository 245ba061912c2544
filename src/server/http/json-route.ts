import type { RateLimitQuery } from '../../core';
import { RateLimitUnit, rateLimitUnitFromJSON } from '../../generated/envoy/type/v3/ratelimit_unit';
import {
  RateLimitResponse_Code,
  rateLimitResponse_CodeToJSON,
  rateLimitResponse_RateLimit_UnitToJSON,
  type RateLimitRequest,
  type RateLimitResponse,
} from '../../generated/envoy/service/ratelimit/v3/rls';
import type { RateLimitDecider } from '../grpc/rls-service';
import { toQuery, toResponse } from '../grpc/rls-service';
import { HttpError, type HttpHandler, type HttpRequest } from './http-types';
import { fieldsOf, type JsonFields } from './json-fields';

/**
 * POST /json, as envoyproxy/ratelimit's: a RateLimitRequest in protojson (camelCase or
 * snake_case names) → the RateLimitResponse in protojson, 200 when OK and 429 when OVER_LIMIT.
 * Unlike the reference, bad input is answered 400 with a JSON error naming the field.
 */
export function jsonHandler(decider: RateLimitDecider): HttpHandler {
  return async (request: HttpRequest) => {
    const header = request.headers['x-request-id'];
    const query: RateLimitQuery = toQuery(parseRequest(await request.jsonBody()), typeof header === 'string' ? header : undefined);
    const response = toResponse(await decider.shouldRateLimit(query));
    return { status: response.overall_code === RateLimitResponse_Code.OVER_LIMIT ? 429 : 200, json: protojsonOf(response) };
  };
}

function parseRequest(body: Record<string, unknown>): RateLimitRequest {
  const fields = fieldsOf(body, '').only('domain', 'descriptors', 'hitsAddend', 'hits_addend');
  return {
    domain: fields.optionalString('domain') ?? '',
    hits_addend: uint32(fields, 'hitsAddend', 'hits_addend'),
    descriptors: fields.objects('descriptors').map((descriptor) => {
      descriptor.only('entries', 'limit', 'hitsAddend', 'hits_addend');
      const limit = descriptor.optionalObject('limit')?.only('requestsPerUnit', 'requests_per_unit', 'unit');
      const hits = descriptor.optionalNumber('hitsAddend', 'hits_addend');
      return {
        entries: descriptor.objects('entries').map((entry) => {
          entry.only('key', 'value');
          return { key: entry.optionalString('key') ?? '', value: entry.optionalString('value') ?? '' };
        }),
        limit: limit === undefined ? undefined : { requests_per_unit: uint32(limit, 'requestsPerUnit', 'requests_per_unit'), unit: unitOf(limit) },
        hits_addend: hits === undefined ? undefined : uint32(descriptor, 'hitsAddend', 'hits_addend'),
      };
    }),
  };
}

function uint32(fields: JsonFields, ...names: string[]): number {
  const value = fields.optionalNumber(...names) ?? 0;
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new HttpError(400, `${names[0]} must be a whole number from 0 to 4294967295`, names[0]);
  return value;
}

function unitOf(limit: JsonFields): RateLimitUnit {
  const name = limit.optionalString('unit');
  if (name === undefined) return RateLimitUnit.UNKNOWN;
  const unit = rateLimitUnitFromJSON(name);
  if (unit === RateLimitUnit.UNRECOGNIZED) throw new HttpError(400, `limit.unit must be SECOND, MINUTE, HOUR, DAY, WEEK, MONTH or YEAR (got '${name}')`, 'limit.unit');
  return unit;
}

/** protojson: camelCase names, enums by name, default values left out, durations as "<seconds>s". */
function protojsonOf(response: RateLimitResponse): Record<string, unknown> {
  const json: Record<string, unknown> = { overallCode: rateLimitResponse_CodeToJSON(response.overall_code) };
  if (response.statuses.length > 0) {
    json.statuses = response.statuses.map((status) => {
      const entry: Record<string, unknown> = { code: rateLimitResponse_CodeToJSON(status.code) };
      const limit = status.current_limit;
      if (limit !== undefined) {
        entry.currentLimit = {
          ...(limit.name === '' ? {} : { name: limit.name }),
          ...(limit.requests_per_unit === 0 ? {} : { requestsPerUnit: limit.requests_per_unit }),
          unit: rateLimitResponse_RateLimit_UnitToJSON(limit.unit),
        };
      }
      if (status.limit_remaining !== 0) entry.limitRemaining = status.limit_remaining;
      const reset = status.duration_until_reset;
      if (reset !== undefined) entry.durationUntilReset = reset.nanos === 0 ? `${reset.seconds}s` : `${(reset.seconds + reset.nanos / 1e9).toFixed(3)}s`;
      return entry;
    });
  }
  if (response.response_headers_to_add.length > 0) {
    json.responseHeadersToAdd = response.response_headers_to_add.map(({ key, value }) => ({ key, value }));
  }
  return json;
}
