import { readFile } from 'node:fs/promises';
import { SettingsError, errorMessage } from '../core';
import { parseShardList, type ShardSetting } from './settings';

/**
 * REDIS_SHARDS_FILE: the shard list in a file (one `name=redis://…` per line), so it can change
 * while ringlimit runs. `readIfChanged` reads it whole and answers only when its text differs
 * from the list last accepted (the caller accepts a list once it is in force); a list that does
 * not parse is refused with the file named, and the last good one stays in force.
 */
export class ShardListFile {
  private acceptedText: string | undefined;

  constructor(readonly path: string) {}

  /** The file's shard list if its text differs from the accepted one; undefined if not. */
  async readIfChanged(): Promise<{ readonly shards: ShardSetting[]; accept(): void } | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      throw new SettingsError('REDIS_SHARDS_FILE', `cannot read ${this.path}: ${errorMessage(error)}`);
    }
    if (text === this.acceptedText) return undefined;
    return {
      shards: parseShardList(`REDIS_SHARDS_FILE ${this.path}`, text),
      accept: () => {
        this.acceptedText = text;
      },
    };
  }
}
