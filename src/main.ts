#!/usr/bin/env node
import { Command } from 'commander';
import { createApp } from './app';
import { checkConfigDir } from './cli/check-config';
import { errorMessage } from './core';
import { loadSettings, type SettingsFlags } from './settings/settings';

/** The process entry: the only module that reads process.env, handles signals or exits. */
const program = new Command('ringlimit')
  .description('Global rate-limit service for Envoy (RLS v3)')
  .version(require('../../package.json').version as string);

program
  .command('serve', { isDefault: true })
  .description('serve RLS v3 over gRPC (memory store unless a store is configured)')
  .option('--grpc-host <host>', 'gRPC listen address (GRPC_HOST)')
  .option('--grpc-port <port>', 'gRPC port (GRPC_PORT, default 8081)')
  .option('--http-port <port>', 'HTTP port (HTTP_PORT, default 8080)')
  .option('--config-dir <dir>', 'rule directory (CONFIG_DIR, default ./config)')
  .option('--log-level <level>', 'trace|debug|info|warn|error|fatal|silent (LOG_LEVEL, default info)')
  .action(async (flags: SettingsFlags) => {
    const app = createApp(loadSettings(process.env, flags));
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      app.logger.info({ signal }, 'shutting down');
      app.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          app.logger.error({ err: errorMessage(error) }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      app.logger.info({ signal: 'SIGHUP' }, 'reloading rules and shard list');
      void app.reload();
    });
    await app.start();
  });

program
  .command('check')
  .description('validate a rule directory and print its rules; exits 1 on the first error')
  .argument('<dir>', 'the rule directory')
  .action(async (dir: string) => {
    const report = await checkConfigDir(dir);
    for (const line of report.lines) (report.ok ? console.log : console.error)(line);
    process.exitCode = report.ok ? 0 : 1;
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`ringlimit: ${errorMessage(error)}`);
  process.exit(1);
});
