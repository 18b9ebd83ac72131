import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { createApp } from '../app';
import { LogLevel, createLogger } from '../log';
import { createMetrics } from '../metrics';
import { selfSignedCertificate } from '../pki/selfsigned';
import { TlsFiles, startServer } from '../server/server';
import { GroupTokenRenewer } from '../groups/renewer';
import { VaultClient } from '../vault/client';
import { Kv } from '../vault/kv';
import { ServiceSession } from '../vault/session';
import { Sys } from '../vault/sys';
import { Tokens } from '../vault/tokens';
import { envFlag, opt, positiveInt, secretFrom } from './options';

interface ServeOptions {
  vaultAddr?: string;
  vaultCaFile?: string;
  listen: string;
  adminLogin: string;
  adminPassword?: string;
  adminPasswordFile?: string;
  cert?: string;
  certKey?: string;
  tls: boolean;
  ephemeralCertOut?: string;
  logLevel: LogLevel;
  defaultSecretTtl: number;
  loginRateLimit: number;
  nodeTokenPeriod: number;
  groupTokenRenewInterval: number;
  callbackCaFile?: string[];
  callbackInsecure: boolean;
  callbackTimeout: number;
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('Run the rks HTTPS API in front of Vault/OpenBao')
    .addOption(opt('--vault-addr <url>', 'Vault/OpenBao address (falls back to $VAULT_ADDR)', 'RKS_VAULT_ADDR'))
    .addOption(opt('--vault-ca-file <file>', 'PEM bundle to trust for Vault\'s TLS certificate', 'RKS_VAULT_CA_FILE'))
    .addOption(opt('--listen <host:port>', 'address to listen on', 'RKS_LISTEN').default('0.0.0.0:8080'))
    .addOption(opt('--admin-login <name>', 'administrator login created by init', 'RKS_ADMIN_LOGIN').default('admin'))
    .addOption(opt('--admin-password <password>', 'administrator password (prefer --admin-password-file)', 'RKS_ADMIN_PASSWORD'))
    .addOption(opt('--admin-password-file <file>', 'file holding the administrator password', 'RKS_ADMIN_PASSWORD_FILE'))
    .addOption(opt('--cert <file>', 'PEM server certificate (with its chain) to serve with', 'RKS_CERT'))
    .addOption(opt('--cert-key <file>', 'PEM private key of --cert', 'RKS_CERT_KEY'))
    .option('--no-tls', 'serve plain HTTP (env RKS_NO_TLS=true); only behind a TLS-terminating proxy')
    .addOption(
      opt('--ephemeral-cert-out <file>', 'write the ephemeral self-signed certificate here, for clients to trust', 'RKS_EPHEMERAL_CERT_OUT'),
    )
    .addOption(
      opt('--log-level <level>', 'log level', 'RKS_LOG_LEVEL')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info'),
    )
    .addOption(
      opt('--default-secret-ttl <seconds>', 'TTL given to secrets pushed without meta.ttl', 'RKS_DEFAULT_SECRET_TTL')
        .argParser(positiveInt('--default-secret-ttl'))
        .default(300),
    )
    .addOption(
      opt('--login-rate-limit <n>', 'admin login attempts per minute per source address', 'RKS_LOGIN_RATE_LIMIT')
        .argParser(positiveInt('--login-rate-limit'))
        .default(10),
    )
    .addOption(
      opt('--node-token-period <seconds>', 'node tokens live this long between renewals', 'RKS_NODE_TOKEN_PERIOD')
        .argParser(positiveInt('--node-token-period'))
        .default(600),
    )
    .addOption(
      opt('--group-token-renew-interval <seconds>', 'how often rks renews every group token', 'RKS_GROUP_TOKEN_RENEW_INTERVAL')
        .argParser(positiveInt('--group-token-renew-interval'))
        .default(3600),
    )
    .addOption(
      opt('--callback-ca-file <file...>', 'extra CA bundle(s) trusted for callback and OAuth URLs', 'RKS_CALLBACK_CA_FILE'),
    )
    .option('--callback-insecure', 'do not verify callback/OAuth TLS certificates (env RKS_CALLBACK_INSECURE=true); logged', false)
    .addOption(
      opt('--callback-timeout <seconds>', 'timeout of each OAuth and callback request', 'RKS_CALLBACK_TIMEOUT')
        .argParser(positiveInt('--callback-timeout'))
        .default(5),
    )
    .addHelpText(
      'after',
      `
Every option can also be set with the RKS_* environment variable shown; flags win.
Without --cert/--cert-key, rks serves HTTPS with an ephemeral self-signed certificate.

Example:
  rks serve --vault-addr http://127.0.0.1:8200 --admin-password-file /run/secrets/rks-admin`,
    )
    .action(async (o: ServeOptions, cmd: Command) => {
      if (cmd.getOptionValueSource('tls') !== 'cli' && envFlag('RKS_NO_TLS') === true) o.tls = false;
      if (cmd.getOptionValueSource('callbackInsecure') !== 'cli' && envFlag('RKS_CALLBACK_INSECURE') === true) {
        o.callbackInsecure = true;
      }
      await serve(o);
    });
}

async function serve(o: ServeOptions): Promise<void> {
  const logger = createLogger(o.logLevel);
  const vaultAddr = o.vaultAddr ?? process.env.VAULT_ADDR;
  const adminPassword = secretFrom(o.adminPassword, o.adminPasswordFile);
  const fail = (msg: string): never => {
    logger.fatal(msg);
    process.exit(2);
  };
  if (!vaultAddr) fail('no Vault address: set --vault-addr, RKS_VAULT_ADDR or VAULT_ADDR');
  if (!adminPassword) fail('no administrator password: set --admin-password-file or RKS_ADMIN_PASSWORD');
  if (Boolean(o.cert) !== Boolean(o.certKey)) fail('--cert and --cert-key go together');

  const metrics = createMetrics();
  const vault = new VaultClient({ addr: vaultAddr!, caFile: o.vaultCaFile, registry: metrics.registry });
  const sys = new Sys(vault);
  const session = new ServiceSession(sys, o.adminLogin, adminPassword!, logger);
  const app = createApp({
    vault,
    logger,
    metrics,
    adminLogin: o.adminLogin,
    adminPassword: adminPassword!,
    defaultSecretTtl: o.defaultSecretTtl,
    loginLimit: { max: o.loginRateLimit, windowMs: 60_000 },
    session,
    nodeTokenPeriod: o.nodeTokenPeriod,
    callback: { timeoutMs: o.callbackTimeout * 1000, caFiles: o.callbackCaFile, insecure: o.callbackInsecure },
  });
  const renewer = new GroupTokenRenewer(new Kv(vault), new Tokens(vault), session, o.groupTokenRenewInterval * 1000, logger);
  renewer.start();

  let tls: TlsFiles | null = null;
  if (!o.tls) {
    logger.warn('TLS is off (--no-tls): tokens and private keys cross the network in clear text');
  } else if (o.cert && o.certKey) {
    tls = { cert: fs.readFileSync(o.cert), key: fs.readFileSync(o.certKey) };
  } else {
    tls = await selfSignedCertificate();
    logger.warn('serving with an ephemeral self-signed certificate; clients must trust it explicitly');
    if (o.ephemeralCertOut) {
      fs.mkdirSync(path.dirname(path.resolve(o.ephemeralCertOut)), { recursive: true });
      fs.writeFileSync(o.ephemeralCertOut, tls.cert);
      logger.info({ file: o.ephemeralCertOut }, 'wrote the ephemeral certificate');
    }
  }

  const running = await startServer(app, o.listen, tls, logger);
  logger.info({ url: running.url, vault: vault.addr }, 'rks listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    await running.close();
    await renewer.stop();
    vault.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
