import { Command, Option } from 'commander';
import { Switch, applySettingsFile, effectiveSettings, formatSettings } from './settings-file';
import { UsageError, resolveConfig } from '../config';
import { SETTINGS, SettingSpec, Settings } from '../settings';
import { createLogger } from '../log';
import { primeServiceCredentials } from '../vault/identity';
import { envFlag, opt, optionOf } from './options';

export function serveCommand(): Command {
  const cmd = new Command('serve').description('Run the rks HTTPS API in front of Vault/OpenBao');
  for (const s of Object.values(SETTINGS) as SettingSpec<unknown>[]) cmd.addOption(optionOf(s));
  return cmd
    .addOption(opt('--config <file>', 'a settings file: RKS_* lines as in the environment (NAME=value, # comments); flags win, then the environment, then the file', 'RKS_CONFIG'))
    .option('--print-config', 'print the settings rks would run with, where each came from and secrets hidden, in the settings file\'s format, and exit')
    .addHelpText(
      'after',
      `
Every option can also be set with the RKS_* environment variable shown, or in a --config file
of such lines. Flags win, then the environment, then the file, then the defaults.
TLS: with --cert/--cert-key rks serves that certificate. Otherwise it serves a certificate from
its own CA in Vault (made by init), renewed before it expires; before init it serves an
ephemeral self-signed one and logs its fingerprint.

Example:
  rks serve --vault-addr http://127.0.0.1:8200 --admin-password-file /run/secrets/rks-admin`,
    )
    .action(async (_o: Settings, cmd: Command) => {
      let fromFile = new Set<string>();
      try {
        if (cmd.getOptionValue('config')) fromFile = applySettingsFile(cmd, cmd.getOptionValue('config') as string, [...Object.values(SWITCHES).map((s) => s.variable), 'VAULT_ADDR']);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`rks: ${err.message}\n`);
        process.exit(2);
      }
      const o = cmd.opts<Settings & { printConfig?: boolean }>();
      for (const [attribute, { variable, invert }] of Object.entries(SWITCHES)) {
        let on: boolean | undefined;
        try {
          on = envFlag(variable);
        } catch (err) {
          process.stderr.write(`rks: ${(err as Error).message}\n`);
          process.exit(2);
        }
        if (cmd.getOptionValueSource(attribute) !== 'cli' && on === true) (o as unknown as Record<string, boolean>)[attribute] = !invert;
      }
      if (o.printConfig) {
        const secrets = new Set((Object.values(SETTINGS) as SettingSpec<unknown>[]).filter((s) => s.secret).map((s) => s.env));
        const secret = (opt: Option) => secrets.has(opt.envVar ?? '');
        process.stdout.write(`${formatSettings(effectiveSettings(cmd, o as unknown as Record<string, unknown>, fromFile, SWITCHES, secret))}\n`);
        return;
      }
      await serve(o);
    });
}

/** Switches by the attribute commander gives them. */
const SWITCHES: Record<string, Switch> = Object.fromEntries(
  (Object.entries(SETTINGS) as [string, SettingSpec<unknown>][]).filter(([, s]) => s.toggle).map(([key, s]) => [key, { variable: s.env, invert: s.toggle!.invert }]),
);

async function serve(flags: Settings): Promise<void> {
  const logger = createLogger(flags.logLevel);
  let config;
  try {
    config = resolveConfig(flags);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    logger.fatal(err.message);
    logger.flush();
    process.exitCode = 2;
    return;
  }
  // The service credentials cost a 32 MB scrypt run: made before the server's modules load, so
  // that the two do not add up in rks's peak memory (the session makes them later otherwise).
  await primeServiceCredentials(config).catch(() => undefined);
  const { startRks } = await import('../server/bootstrap');
  const rks = await startRks(config, logger);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    await rks.stop();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
