import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** Tests run from build/test/…; the repository root is found relative to this compiled file. */
export const REPO_ROOT = resolve(__dirname, '../../..');

export function fixturePath(...parts: string[]): string {
  return join(REPO_ROOT, 'test', 'fixtures', ...parts);
}

export async function withTempDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ringlimit-test-'));
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ringlimit-test-'));
}
