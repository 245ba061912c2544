import { createHash, timingSafeEqual } from 'node:crypto';
import type { CapacityOverride } from '../../core';
import type { AdminTarget, OverrideRequest } from '../../limiter/control-plane';
import { HttpError, type HttpHandler, type HttpRequest } from './http-types';
import { fieldsOf, type JsonFields } from './json-fields';

/** The admin operations as the HTTP side sees them (limiter/control-plane.ts). */
export interface AdminApi {
  setOverride(request: OverrideRequest): Promise<CapacityOverride>;
  removeOverride(target: AdminTarget): Promise<boolean>;
  listOverrides(): Promise<CapacityOverride[]>;
  prewarm(targets: readonly AdminTarget[]): Promise<number>;
  reset(target: AdminTarget): Promise<number>;
}

const TARGET_FIELDS = ['bucket_id', 'descriptor', 'rule'];

/**
 * Requires `Authorization: Bearer <ADMIN_TOKEN>`: 401 without it, 403 with another token,
 * compared in constant time. With no token configured the admin API is off (404).
 */
export function requireAdminToken(token: string | undefined, handler: HttpHandler): HttpHandler {
  const expected = token === undefined ? undefined : digest(token);
  return async (request: HttpRequest) => {
    if (expected === undefined) throw new HttpError(404, 'the admin API is off: set ADMIN_TOKEN to turn it on');
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (match === null) throw new HttpError(401, 'admin calls need Authorization: Bearer <token>', 'authorization', { 'www-authenticate': 'Bearer realm="ringlimit-admin"' });
    if (!timingSafeEqual(digest(match[1] as string), expected)) throw new HttpError(403, 'the admin token is not valid', 'authorization');
    return handler(request);
  };
}

/** Digests first, so tokens of any length compare in constant time. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** GET /admin/overrides: the overrides in force. */
export function listOverridesHandler(api: AdminApi): HttpHandler {
  return async () => ({ status: 200, json: { overrides: (await api.listOverrides()).map(overrideJson) } });
}

/** POST /admin/overrides {bucket_id | descriptor | rule, capacity?, requests_per_unit?, ttl_seconds}. */
export function setOverrideHandler(api: AdminApi): HttpHandler {
  return async (request) => {
    const body = fieldsOf(await request.jsonBody(), '').only(...TARGET_FIELDS, 'unit', 'capacity', 'requests_per_unit', 'ttl_seconds');
    const override = await api.setOverride({
      target: targetOf(body, true),
      capacity: body.optionalNumber('capacity'),
      requestsPerUnit: body.optionalNumber('requests_per_unit'),
      unit: body.optionalString('unit'),
      ttlMs: body.number('ttl_seconds') * 1000,
    });
    return { status: 201, json: overrideJson(override) };
  };
}

/** DELETE /admin/overrides {bucket_id | descriptor | rule}: ends an override now. */
export function removeOverrideHandler(api: AdminApi): HttpHandler {
  return async (request) => {
    const body = fieldsOf(await request.jsonBody(), '').only(...TARGET_FIELDS);
    if (!(await api.removeOverride(targetOf(body, true)))) throw new HttpError(404, 'no override for that target');
    return { status: 200, json: { removed: true } };
  };
}

/** POST /admin/prewarm {buckets: [{bucket_id} | {descriptor}]}: reads them into this instance's local copy. */
export function prewarmHandler(api: AdminApi): HttpHandler {
  return async (request) => {
    const body = fieldsOf(await request.jsonBody(), '').only('buckets');
    const targets = body.objects('buckets').map((entry) => targetOf(entry.only('bucket_id', 'descriptor'), false));
    if (targets.length === 0) throw new HttpError(400, 'buckets must list at least one {bucket_id} or {descriptor}', 'buckets');
    return { status: 200, json: { requested: targets.length, existing: await api.prewarm(targets) } };
  };
}

/** POST /admin/reset {bucket_id | descriptor}: the bucket(s) start full again. */
export function resetHandler(api: AdminApi): HttpHandler {
  return async (request) => {
    const body = fieldsOf(await request.jsonBody(), '').only('bucket_id', 'descriptor');
    return { status: 200, json: { reset: await api.reset(targetOf(body, false)) } };
  };
}

function targetOf(fields: JsonFields, ruleAllowed: boolean): AdminTarget {
  const bucketId = fields.optionalString('bucket_id');
  const descriptor = fields.optionalObject('descriptor');
  const rule = ruleAllowed ? fields.optionalString('rule') : undefined;
  const given = [bucketId, descriptor, rule].filter((value) => value !== undefined).length;
  const names = ruleAllowed ? 'bucket_id, descriptor or rule' : 'bucket_id or descriptor';
  if (given !== 1) throw new HttpError(400, `give exactly one of ${names}`, 'bucket_id');
  if (bucketId !== undefined) return { bucketId };
  if (rule !== undefined) return { rule };
  const parsed = (descriptor as JsonFields).only('domain', 'entries');
  const entries = parsed.objects('entries').map((entry) => {
    entry.only('key', 'value');
    return { key: entry.string('key'), value: entry.optionalString('value') ?? '' };
  });
  if (entries.length === 0) throw new HttpError(400, 'descriptor.entries must not be empty', 'descriptor.entries');
  return { descriptor: { domain: parsed.string('domain'), entries } };
}

function overrideJson(override: CapacityOverride): Record<string, unknown> {
  return {
    target: override.target.rule === undefined ? { bucket: override.target.bucket } : { rule: override.target.rule },
    ...(override.capacity === undefined ? {} : { capacity: override.capacity }),
    ...(override.requestsPerUnit === undefined ? {} : { requests_per_unit: override.requestsPerUnit }),
    ...(override.unit === undefined ? {} : { unit: override.unit }),
    expires_at: new Date(override.expiresAtMs).toISOString(),
  };
}
