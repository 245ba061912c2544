import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO_ROOT } from './support/paths';

const SRC = join(REPO_ROOT, 'src');

/** Which top-level modules of src/ each module may import (CONVENTIONS.md §3; `type:` = type-only). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  settings: ['core'],
  config: ['core'],
  matcher: ['core', 'type:config'],
  bucket: ['core'],
  limiter: ['core', 'matcher', 'bucket', 'type:config'],
  store: ['core', 'bucket'],
  observability: ['core', 'type:settings'],
  server: ['core', 'type:limiter', 'type:observability', 'generated'],
  cli: ['core', 'config'],
  bench: ['generated'],
  generated: [],
  'main.ts': ['app.ts', 'settings', 'cli', 'core', 'bench'],
};

interface Import {
  readonly from: string;
  readonly target: string;
  readonly typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function moduleOf(path: string): string {
  return relative(SRC, path).split('/')[0] as string;
}

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const found: Import[] = [];
  for (const match of text.matchAll(/^(import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'/gm)) {
    const target = resolve(dirname(file), match[3] as string);
    const targetFile = existsSync(target) && statSync(target).isDirectory() ? join(target, 'index.ts') : `${target}.ts`;
    found.push({ from: moduleOf(file), target: moduleOf(targetFile), typeOnly: match[2] !== undefined });
  }
  return found;
}

describe('architecture', () => {
  it('keeps data flowing one way: every src import is allowed by the layer table', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const module = moduleOf(file);
      if (module === 'app.ts') continue;
      const allowed = ALLOWED[module];
      assert.ok(allowed, `src/${module} has no entry in the layer table`);
      for (const { target, typeOnly } of importsOf(file)) {
        if (target === module) continue;
        if (allowed.includes(target) || (typeOnly && allowed.includes(`type:${target}`))) continue;
        violations.push(`${relative(REPO_ROOT, file)} imports ${typeOnly ? 'types of ' : ''}${target}`);
      }
    }
    assert.deepEqual(violations, []);
  });

  it('reads process.env only in main.ts', () => {
    const readers = sourceFiles(SRC).filter((file) => /process\.env/.test(readFileSync(file, 'utf8')));
    assert.deepEqual(readers.map((file) => relative(SRC, file)), ['main.ts']);
  });

  it('has no default exports and no console output outside main.ts', () => {
    for (const file of sourceFiles(SRC)) {
      const text = readFileSync(file, 'utf8');
      if (relative(SRC, file).startsWith('generated')) continue;
      assert.doesNotMatch(text, /export default/, file);
      if (!file.endsWith('main.ts')) assert.doesNotMatch(text, /console\./, file);
    }
  });
});
