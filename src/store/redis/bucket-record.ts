import type { VersionedBucket } from '../../core';

/** Parses "<version>:<tokens>:<updated_at_ms>" (bucket-cas.lua's record); null/'' = absent. */
export function parseBucketRecord(record: string | null | undefined): VersionedBucket | undefined {
  if (record === null || record === undefined || record === '') return undefined;
  const [version, tokens, updatedAtMs] = record.split(':');
  const parsed = { version: Number(version), state: { tokens: Number(tokens), updatedAtMs: Number(updatedAtMs) } };
  if (!Number.isFinite(parsed.version) || !Number.isFinite(parsed.state.tokens) || !Number.isFinite(parsed.state.updatedAtMs)) {
    return undefined;
  }
  return parsed;
}
