import os from 'node:os';
import { Command, Option } from 'commander';
import { Switch, applySettingsFile, effectiveSettings, formatSettings } from './settings-file';
import { DEFAULTS, ServeFlags, UsageError, resolveConfig } from '../config';
import { createLogger } from '../log';
import { startRks } from '../server/bootstrap';
import { USERPASS_LOCKOUT } from '../vault/layout';
import { STRONG_PASSWORD_BITS } from '../admin/strength';
import { envFlag, opt, positiveInt, wholeNumber } from './options';

export function serveCommand(): Command {
  return new Command('serve')
    .description('Run the rks HTTPS API in front of Vault/OpenBao')
    .addOption(
      opt(
        '--vault-addr <url...>',
        'Vault/OpenBao address; repeat it or separate with commas to give every node of a cluster, rks sends to the active one (falls back to $VAULT_ADDR)',
        'RKS_VAULT_ADDR',
      ),
    )
    .addOption(opt('--vault-ca-file <file>', 'PEM bundle to trust for Vault\'s TLS certificate', 'RKS_VAULT_CA_FILE'))
    .addOption(
      opt('--vault-timeout <seconds>', 'deadline of each call to Vault, failover included; past it the client gets 503', 'RKS_VAULT_TIMEOUT')
        .argParser(positiveInt('--vault-timeout', 60))
        .default(DEFAULTS.vaultTimeout),
    )
    .addOption(
      opt('--expiry-warning-days <days>', 'log a warning for each certificate entering its last days', 'RKS_EXPIRY_WARNING_DAYS')
        .argParser(positiveInt('--expiry-warning-days', 3650))
        .default(DEFAULTS.expiryWarningDays),
    )
    .addOption(
      opt('--expiry-check-interval <seconds>', 'how often rks looks at every certificate\'s expiry (metrics, warnings)', 'RKS_EXPIRY_CHECK_INTERVAL')
        .argParser(positiveInt('--expiry-check-interval', 86400))
        .default(DEFAULTS.expiryCheckInterval),
    )
    .addOption(
      opt('--managed-check-interval <seconds>', 'how often rks looks for managed secrets due for renewal', 'RKS_MANAGED_CHECK_INTERVAL')
        .argParser(positiveInt('--managed-check-interval', 3600))
        .default(DEFAULTS.managedCheckInterval),
    )
    .addOption(
      opt('--acme-timeout <seconds>', 'deadline of each request to an ACME CA', 'RKS_ACME_TIMEOUT')
        .argParser(positiveInt('--acme-timeout', 120))
        .default(DEFAULTS.acmeTimeout),
    )
    .addOption(
      opt('--expiry-metric-limit <n>', 'rks_secret_expiry_timestamp_seconds series for the soonest-expiring secrets, named: anyone who reaches /metrics reads those names (0: none, only the counts)', 'RKS_EXPIRY_METRIC_LIMIT')
        .argParser(wholeNumber('--expiry-metric-limit', 100_000))
        .default(DEFAULTS.expiryMetricLimit),
    )
    .addOption(
      opt('--vault-max-in-flight <n>', 'calls waiting on Vault at once; beyond it clients get a fast 503 with Retry-After', 'RKS_VAULT_MAX_IN_FLIGHT')
        .argParser(positiveInt('--vault-max-in-flight', 100_000))
        .default(DEFAULTS.vaultMaxInFlight),
    )
    .addOption(opt('--listen <host:port>', 'address to listen on', 'RKS_LISTEN').default(DEFAULTS.listen))
    .addOption(opt('--admin-login <name>', 'administrator login created by init', 'RKS_ADMIN_LOGIN').default(DEFAULTS.adminLogin))
    .addOption(opt('--admin-password <password>', 'administrator password (prefer --admin-password-file)', 'RKS_ADMIN_PASSWORD'))
    .addOption(opt('--admin-password-file <file>', 'file holding the administrator password', 'RKS_ADMIN_PASSWORD_FILE'))
    .option('--allow-weak-admin-password', `start with an administrator password of less than ${STRONG_PASSWORD_BITS} bits (env RKS_ALLOW_WEAK_ADMIN_PASSWORD=true): strangers may guess it from many addresses`, false)
    .addOption(opt('--cert <file>', 'PEM server certificate (with its chain) to serve with', 'RKS_CERT'))
    .addOption(opt('--cert-key <file>', 'PEM private key of --cert (may be encrypted)', 'RKS_CERT_KEY'))
    .addOption(opt('--cert-key-pass <passphrase>', 'passphrase of an encrypted --cert-key', 'RKS_CERT_KEY_PASS'))
    .addOption(opt('--hostname <name>', 'common name of rks\'s own certificate', 'RKS_HOSTNAME').default(os.hostname()))
    .addOption(opt('--san <name...>', 'extra DNS names or IP addresses for rks\'s own certificate', 'RKS_SAN'))
    .addOption(
      opt('--cert-lifetime <seconds>', 'lifetime of rks\'s own certificate', 'RKS_CERT_LIFETIME')
        .argParser(positiveInt('--cert-lifetime', 365 * 86400))
        .default(DEFAULTS.certLifetime),
    )
    .addOption(
      opt('--cert-renew-before <seconds>', 'renew rks\'s own certificate this long before it expires', 'RKS_CERT_RENEW_BEFORE')
        .argParser(positiveInt('--cert-renew-before', 365 * 86400))
        .default(DEFAULTS.certRenewBefore),
    )
    .addOption(opt('--ca-cert <file>', 'at init, import this CA certificate instead of generating one in Vault', 'RKS_CA_CERT_FILE'))
    .addOption(opt('--ca-cert-key <file>', 'the private key of --ca-cert', 'RKS_CA_CERT_KEY'))
    .addOption(opt('--psk <passphrase>', 'pre-shared key of the trust bootstrap (/ca/cert, /ca/sign)', 'RKS_PSK'))
    .addOption(opt('--psk-file <file>', 'file holding the pre-shared key', 'RKS_PSK_FILE'))
    .option('--require-psk', 'every API request must also carry a PSK JWT (env RKS_REQUIRE_PSK=true)', false)
    .option('--no-tls', 'serve plain HTTP (env RKS_NO_TLS=true); only behind a TLS-terminating proxy')
    .addOption(
      opt('--ephemeral-cert-out <file>', 'write the ephemeral self-signed certificate here, for clients to trust', 'RKS_EPHEMERAL_CERT_OUT'),
    )
    .addOption(
      opt('--log-level <level>', 'log level', 'RKS_LOG_LEVEL')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default(DEFAULTS.logLevel),
    )
    .addOption(
      opt('--default-secret-ttl <seconds>', 'TTL given to secrets pushed without meta.ttl', 'RKS_DEFAULT_SECRET_TTL')
        .argParser(positiveInt('--default-secret-ttl', 31_536_000))
        .default(DEFAULTS.defaultSecretTtl),
    )
    .addOption(
      opt('--login-rate-limit <n>', 'failed admin logins from one address before it must pause a minute', 'RKS_LOGIN_RATE_LIMIT')
        .argParser(positiveInt('--login-rate-limit'))
        .default(DEFAULTS.loginRateLimit),
    )
    .addOption(
      opt(
        '--login-failure-limit <n>',
        `failed logins of one login name passed to Vault per 15 minutes (Vault locks at ${USERPASS_LOCKOUT.threshold}, set by init)`,
        'RKS_LOGIN_FAILURE_LIMIT',
      )
        .argParser(positiveInt('--login-failure-limit', USERPASS_LOCKOUT.threshold - 1))
        .default(DEFAULTS.loginFailureLimit),
    )
    .addOption(
      opt(
        '--trust-proxy <address...>',
        'proxies (addresses or CIDRs) whose X-Forwarded-For names the client, for the login limits and logs',
        'RKS_TRUST_PROXY',
      ),
    )
    .addOption(
      opt('--max-nodes-per-group <n>', 'most nodes a group may have registered (bounds what a group token can create in Vault)', 'RKS_MAX_NODES_PER_GROUP')
        .argParser(positiveInt('--max-nodes-per-group', 1_000_000))
        .default(DEFAULTS.maxNodesPerGroup),
    )
    .addOption(
      opt('--node-idle-expiry <seconds>', 'forget nodes that neither registered nor renewed through rks for this long', 'RKS_NODE_IDLE_EXPIRY')
        .argParser(positiveInt('--node-idle-expiry', 365 * 86400))
        .default(DEFAULTS.nodeIdleExpiry),
    )
    .addOption(
      opt('--node-token-period <seconds>', 'node tokens live this long between renewals', 'RKS_NODE_TOKEN_PERIOD')
        .argParser(positiveInt('--node-token-period', 31 * 86400))
        .default(DEFAULTS.nodeTokenPeriod),
    )
    .addOption(
      opt('--group-token-renew-interval <seconds>', 'how often rks renews every group token', 'RKS_GROUP_TOKEN_RENEW_INTERVAL')
        .argParser(positiveInt('--group-token-renew-interval', 7 * 86400))
        .default(DEFAULTS.groupTokenRenewInterval),
    )
    .addOption(
      opt('--callback-ca-file <file...>', 'extra CA bundle(s) trusted for callback and OAuth URLs', 'RKS_CALLBACK_CA_FILE'),
    )
    .option('--callback-insecure', 'do not verify callback/OAuth TLS certificates (env RKS_CALLBACK_INSECURE=true); logged', false)
    .addOption(
      opt('--callback-timeout <seconds>', 'deadline of a node\'s verification: OAuth token and callback, connect to last byte', 'RKS_CALLBACK_TIMEOUT')
        .argParser(positiveInt('--callback-timeout', 120))
        .default(DEFAULTS.callbackTimeout),
    )
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
    .action(async (_o: ServeFlags, cmd: Command) => {
      let fromFile = new Set<string>();
      try {
        if (cmd.getOptionValue('config')) fromFile = applySettingsFile(cmd, cmd.getOptionValue('config') as string, [...Object.values(SWITCHES).map((s) => s.variable), 'VAULT_ADDR']);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`rks: ${err.message}\n`);
        process.exit(2);
      }
      const o = cmd.opts<ServeFlags & { printConfig?: boolean }>();
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
        const secret = (opt: Option) => /^--(admin-password|cert-key-pass|psk)$/.test(opt.long ?? '');
        process.stdout.write(`${formatSettings(effectiveSettings(cmd, o as unknown as Record<string, unknown>, fromFile, SWITCHES, secret))}\n`);
        return;
      }
      await serve(o);
    });
}

/** Switches whose variable is read when the command runs (commander would take RKS_NO_TLS=0 as on). */
const SWITCHES: Record<string, Switch> = {
  tls: { variable: 'RKS_NO_TLS', invert: true },
  requirePsk: { variable: 'RKS_REQUIRE_PSK' },
  allowWeakAdminPassword: { variable: 'RKS_ALLOW_WEAK_ADMIN_PASSWORD' },
  callbackInsecure: { variable: 'RKS_CALLBACK_INSECURE' },
};

async function serve(flags: ServeFlags): Promise<void> {
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
