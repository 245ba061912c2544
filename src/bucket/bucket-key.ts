import type { DescriptorEntry, LimitOverride, TimeUnit } from '../core';

/*
 * Bucket ids look like `api|user_id=alice|path=%2Fchat#minute`: the domain, each entry as
 * key=value, then what distinguishes the limit. `%`, `|`, `=` and `#` inside names and values are
 * percent-encoded so that no two different descriptors can produce the same id.
 */

const NEEDS_ESCAPE = /[%|=#]/;

function escapePart(text: string): string {
  // Most names and values hold none of these: a test is far cheaper than a replace with a callback.
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replace(/[%|=#]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function entriesPart(domain: string, entries: readonly DescriptorEntry[]): string {
  let id = escapePart(domain);
  for (const entry of entries) id += `|${escapePart(entry.key)}=${escapePart(entry.value)}`;
  return id;
}

/** The group of a descriptor's buckets (every limit of its rule): what an admin override or reset names. */
export function descriptorGroup(domain: string, entries: readonly DescriptorEntry[]): string {
  return entriesPart(domain, entries);
}

/** Id of the bucket of a configured limit. The unit is part of it: a rule may hold one limit per unit. */
export function ruleBucketKey(domain: string, entries: readonly DescriptorEntry[], unit: TimeUnit): string {
  return `${entriesPart(domain, entries)}#${unit}`;
}

/** Id of the bucket of a caller-chosen limit: the override's rate is part of it. */
export function overrideBucketKey(domain: string, entries: readonly DescriptorEntry[], override: LimitOverride): string {
  return `${entriesPart(domain, entries)}#override:${override.requestsPerUnit}/${override.unit}`;
}

/**
 * Id of a caller-defined bucket (POST /rate). No rule bucket id can equal it: those start with an
 * escaped domain, which never holds a bare `=` before the first `|`.
 */
export function apiBucketKey(bucketId: string): string {
  return `rate=${escapePart(bucketId)}#api`;
}

/**
 * The part of a bucket id that places it: every limit of one rule for one descriptor shares it,
 * so a sharded store keeps them together and can write them atomically.
 */
export function bucketGroup(bucketKey: string): string {
  const end = bucketKey.indexOf('#');
  return end === -1 ? bucketKey : bucketKey.slice(0, end);
}
