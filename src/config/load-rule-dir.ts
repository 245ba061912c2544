import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, errorMessage } from '../core';
import { compileRuleSet } from './compile-rules';
import type { RuleSet } from './rule-set';
import { validateRuleFile } from './validate-rules';

export interface RuleFileText {
  readonly file: string;
  readonly text: string;
}

/**
 * Rule files are the `*.yaml` / `*.yml` entries of the directory, in name order. Dot-entries are
 * skipped so that a Kubernetes ConfigMap's `..data` and `..2024_…` directories are never read twice
 * (the reference's "duplicate domain" trap, envoyproxy/ratelimit#367); symlinks are followed.
 */
export async function readRuleFiles(dir: string): Promise<RuleFileText[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new ConfigError(dir, '', `cannot read the config directory: ${errorMessage(error)}`, { cause: error });
  }
  const files: RuleFileText[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.') || !/\.ya?ml$/.test(name)) continue;
    const file = join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) continue;
    try {
      files.push({ file, text: await readFile(file, 'utf8') });
    } catch (error) {
      throw new ConfigError(file, '', `cannot read the file: ${errorMessage(error)}`, { cause: error });
    }
  }
  return files;
}

/** Validates and compiles rule files; the first error throws ConfigError. */
export function compileRuleFiles(files: readonly RuleFileText[]): RuleSet {
  return compileRuleSet(files.map(({ file, text }) => validateRuleFile(file, text)));
}

export async function loadRuleDir(dir: string): Promise<RuleSet> {
  return compileRuleFiles(await readRuleFiles(dir));
}
