import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError, errorMessage } from '../core';
import { compileRuleFiles, readRuleFiles, type RuleFileText } from './load-rule-dir';
import type { RuleSet } from './rule-set';

export interface FileRuleSourceOptions {
  readonly dir: string;
  readonly logger: Logger;
  /** Quiet time after a change event before reloading, so an editor's burst of writes loads once. */
  readonly debounceMs?: number;
  /** Content check interval: catches what fs.watch misses (a replaced directory, some symlink swaps). */
  readonly pollIntervalMs?: number;
}

export type RuleSetListener = (rules: RuleSet) => void;

/**
 * The rule directory, watched. A change is loaded whole: every file is re-read, validated and
 * compiled, and only a fully valid result replaces the current RuleSet (one reference swap, so
 * a request sees either the old or the new rules, never a mix). A bad change is logged and the
 * last good RuleSet keeps serving.
 */
export class FileRuleSource {
  private readonly dir: string;
  private readonly logger: Logger;
  private readonly debounceMs: number;
  private readonly pollIntervalMs: number;
  private rules: RuleSet | undefined;
  private error: ConfigError | undefined;
  private lastDigest: string | undefined;
  private watcher: FSWatcher | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> = Promise.resolve();
  private readonly listeners: RuleSetListener[] = [];

  constructor(options: FileRuleSourceOptions) {
    this.dir = options.dir;
    this.logger = options.logger.child({ component: 'rule-source', dir: options.dir });
    this.debounceMs = options.debounceMs ?? 50;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
  }

  /** The last good rules; undefined until one load has succeeded. */
  current(): RuleSet | undefined {
    return this.rules;
  }

  /** The error of the newest load attempt, if it failed. */
  lastError(): ConfigError | undefined {
    return this.error;
  }

  onLoaded(listener: RuleSetListener): void {
    this.listeners.push(listener);
  }

  /** Loads once, then watches. A failed first load is logged, not thrown: a fix is picked up later. */
  async start(): Promise<void> {
    await this.reload();
    this.watchDir();
    this.pollTimer = setInterval(() => {
      if (this.watcher === undefined) this.watchDir();
      void this.reload();
    }, this.pollIntervalMs);
    this.pollTimer.unref();
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.debounceTimer);
    clearInterval(this.pollTimer);
  }

  /** Re-reads the directory; loads only if its contents changed. Calls never overlap. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.reloadNow());
    return this.reloading;
  }

  private async reloadNow(): Promise<void> {
    let files: RuleFileText[];
    try {
      files = await readRuleFiles(this.dir);
    } catch (error) {
      this.reject(error instanceof ConfigError ? error : new ConfigError(this.dir, '', errorMessage(error)), undefined);
      return;
    }
    const digest = digestOf(files);
    if (digest === this.lastDigest) return;
    try {
      const rules = compileRuleFiles(files);
      this.rules = rules;
      this.error = undefined;
      this.lastDigest = digest;
      this.logger.info({ files: rules.files, domains: [...rules.domains.keys()] }, 'rate limit configuration loaded');
      for (const listener of this.listeners) listener(rules);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      this.reject(error, digest);
    }
  }

  private reject(error: ConfigError, digest: string | undefined): void {
    const repeated = this.error?.message === error.message;
    this.error = error;
    this.lastDigest = digest;
    if (repeated) return;
    this.logger.error(
      { file: error.file, path: error.path, line: error.line, reason: error.reason, keptPreviousConfig: this.rules !== undefined },
      `error loading rate limit configuration: ${error.message}`,
    );
  }

  private watchDir(): void {
    try {
      this.watcher = watch(this.dir, { persistent: false }, () => this.scheduleReload());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // The directory may not exist yet; the content poll still notices when it appears.
      this.watcher = undefined;
    }
  }

  private scheduleReload(): void {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => void this.reload(), this.debounceMs);
    this.debounceTimer.unref();
  }
}

function digestOf(files: readonly RuleFileText[]): string {
  const hash = createHash('sha256');
  for (const { file, text } of files) hash.update(file).update('\0').update(text).update('\0');
  return hash.digest('hex');
}
