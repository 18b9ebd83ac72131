import { Command, InvalidArgumentError, Option } from 'commander';
import { AppliedFile, Switch, applySettingsFile, effectiveSettings, formatSettings } from './settings-file';
import { Config, resolveConfig } from '../config';
import { SETTINGS, SettingSpec, Settings, UsageError } from '../settings';
import { mustListen } from './listening';
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
      let applied: AppliedFile | undefined;
      const o = cmd.opts<Settings & { printConfig?: boolean }>();
      let config: Readonly<Config>;
      try {
        if (cmd.getOptionValue('config')) applied = applySettingsFile(cmd, cmd.getOptionValue('config') as string, [...Object.values(SWITCHES).map((s) => s.variable), 'VAULT_ADDR']);
        for (const [attribute, { variable, invert }] of Object.entries(SWITCHES)) {
          const on = envFlag(variable);
          if (cmd.getOptionValueSource(attribute) !== 'cli' && on === true) (o as unknown as Record<string, boolean>)[attribute] = !invert;
        }
        // Every value checked before anything else happens, --print-config included.
        config = resolveConfig(o, process.env, Boolean(o.printConfig));
      } catch (err) {
        if (!(err instanceof UsageError) && !(err instanceof InvalidArgumentError)) throw err;
        process.stderr.write(`rks: ${err.message}${err instanceof UsageError && err.flag ? sourceOf(cmd, err.flag, applied) : ''}\n`);
        process.exit(2);
      }
      if (o.adminPassword && o.adminPasswordFile) process.stderr.write('rks: both --admin-password and --admin-password-file are set: the file wins\n');
      if (o.printConfig) {
        const secrets = new Set((Object.values(SETTINGS) as SettingSpec<unknown>[]).filter((s) => s.secret).map((s) => s.env));
        const secret = (opt: Option) => secrets.has(opt.envVar ?? '');
        process.stdout.write(`${formatSettings(effectiveSettings(cmd, o as unknown as Record<string, unknown>, new Set(applied?.lines.keys()), SWITCHES, secret))}\n`);
        return;
      }
      await serve(config, o.logLevel);
    });
}

/** Where a setting's value came from, as said after a reason: nothing for a flag (the reason names it). */
function sourceOf(cmd: Command, flag: string, applied?: AppliedFile): string {
  const option = cmd.options.find((x) => x.long === flag);
  const variable = option?.envVar ?? (Object.values(SETTINGS) as SettingSpec<unknown>[]).find((s) => s.flag.split(' ')[0] === flag)?.env;
  if (!option || !variable || cmd.getOptionValueSource(option.attributeName()) === 'cli') return '';
  const line = applied?.lines.get(variable);
  if (line !== undefined) return ` (${variable} at --config ${applied!.file}, line ${line})`;
  if (process.env[variable] !== undefined) return ` (${variable} in the environment)`;
  if (flag === '--vault-addr' && process.env.VAULT_ADDR !== undefined) return ' (VAULT_ADDR in the environment)';
  return '';
}

/** Switches by the attribute commander gives them. */
const SWITCHES: Record<string, Switch> = Object.fromEntries(
  (Object.entries(SETTINGS) as [string, SettingSpec<unknown>][]).filter(([, s]) => s.toggle).map(([key, s]) => [key, { variable: s.env, invert: s.toggle!.invert }]),
);

async function serve(config: Readonly<Config>, logLevel: Settings['logLevel']): Promise<void> {
  // A port taken is said now, not after rks asked Vault for a certificate.
  await mustListen(config.listen, '--listen');
  const logger = createLogger(logLevel);
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
