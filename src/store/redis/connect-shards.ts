import type { Logger } from 'pino';
import { StoreAuthError, errorMessage } from '../../core';
import { createShardClient, redactRedisUrl, type ShardClient } from './redis-client';

export interface ShardAddress {
  readonly name: string;
  readonly url: string;
}

export interface ConnectShardsOptions {
  readonly shards: readonly ShardAddress[];
  readonly commandTimeoutMs: number;
  readonly tlsCaFile?: string | undefined;
  /** For shards whose URL has no password. */
  readonly password?: string | undefined;
  readonly logger: Logger;
}

const AUTH_FAILURE = /WRONGPASS|NOAUTH|NOPERM|invalid password|invalid username-password/i;

/**
 * Creates a client per shard and connects them all. A shard that refuses the credentials stops
 * the start (StoreAuthError naming it); a shard that is merely unreachable is logged and keeps
 * reconnecting in the background, so one region's outage does not stop another's instances.
 */
export async function connectShards(options: ConnectShardsOptions): Promise<Map<string, ShardClient>> {
  const logger = options.logger.child({ component: 'redis-shards' });
  const clients = new Map<string, ShardClient>();
  // ioredis reports a refused AUTH on its 'error' event; connect() only says the connection closed.
  const lastErrors = new Map<string, unknown>();
  for (const { name, url } of options.shards) {
    const client = createShardClient({ url, commandTimeoutMs: options.commandTimeoutMs, tlsCaFile: options.tlsCaFile, password: options.password });
    let up = false;
    client.on('ready', () => {
      if (!up) logger.info({ shard: name, url: redactRedisUrl(url) }, 'shard connected');
      up = true;
    });
    client.on('error', (error: unknown) => {
      lastErrors.set(name, error);
      if (up) logger.error({ shard: name, url: redactRedisUrl(url), err: errorMessage(error) }, 'shard connection failed');
      up = false;
    });
    clients.set(name, client);
  }
  const failures = await Promise.all(
    [...clients].map(async ([name, client]) => {
      try {
        await client.connect();
        // connect() resolves even when AUTH was refused; a PING surfaces NOAUTH/WRONGPASS.
        await client.ping();
        return undefined;
      } catch (error) {
        return { name, error: AUTH_FAILURE.test(errorMessage(lastErrors.get(name))) ? lastErrors.get(name) : error };
      }
    }),
  );
  for (const failure of failures) {
    if (failure === undefined) continue;
    const url = redactRedisUrl(options.shards.find((shard) => shard.name === failure.name)?.url ?? '');
    if (AUTH_FAILURE.test(errorMessage(failure.error))) {
      for (const client of clients.values()) client.disconnect();
      throw new StoreAuthError(failure.name, url, { cause: failure.error });
    }
    logger.warn({ shard: failure.name, url, err: errorMessage(failure.error) }, 'shard unreachable at start; reconnecting in the background');
  }
  return clients;
}
