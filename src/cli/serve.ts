import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { DEFAULT_LOGIN_LIMITS } from '../admin/service';
import { DEFAULT_MAX_NODES_PER_GROUP, createApp } from '../app';
import { NodePruner } from '../nodes/pruner';
import { Periodic } from '../background/periodic';
import { USERPASS_LOCKOUT } from '../vault/layout';
import { LogLevel, createLogger } from '../log';
import { createMetrics } from '../metrics';
import { localNames } from '../pki/selfsigned';
import { PkiService } from '../pki/service';
import { ManagedCertificate } from '../server/certificate';
import { Pki } from '../vault/pki';
import { RunningServer, TlsFiles, startServer } from '../server/server';
import { GroupTokenRenewer } from '../groups/renewer';
import { VaultClient } from '../vault/client';
import { Kv } from '../vault/kv';
import { ServiceSession } from '../vault/session';
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
  loginFailureLimit: number;
  maxNodesPerGroup: number;
  trustProxy?: string[];
  nodeIdleExpiry: number;
  nodeTokenPeriod: number;
  groupTokenRenewInterval: number;
  callbackCaFile?: string[];
  callbackInsecure: boolean;
  callbackTimeout: number;
  psk?: string;
  pskFile?: string;
  requirePsk: boolean;
  caCert?: string;
  caCertKey?: string;
  certKeyPass?: string;
  hostname: string;
  san?: string[];
  certLifetime: number;
  certRenewBefore: number;
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
    .addOption(opt('--cert-key <file>', 'PEM private key of --cert (may be encrypted)', 'RKS_CERT_KEY'))
    .addOption(opt('--cert-key-pass <passphrase>', 'passphrase of an encrypted --cert-key', 'RKS_CERT_KEY_PASS'))
    .addOption(opt('--hostname <name>', 'common name of rks\'s own certificate', 'RKS_HOSTNAME').default(os.hostname()))
    .addOption(opt('--san <name...>', 'extra DNS names or IP addresses for rks\'s own certificate', 'RKS_SAN'))
    .addOption(
      opt('--cert-lifetime <seconds>', 'lifetime of rks\'s own certificate', 'RKS_CERT_LIFETIME')
        .argParser(positiveInt('--cert-lifetime', 365 * 86400))
        .default(30 * 86400),
    )
    .addOption(
      opt('--cert-renew-before <seconds>', 'renew rks\'s own certificate this long before it expires', 'RKS_CERT_RENEW_BEFORE')
        .argParser(positiveInt('--cert-renew-before', 365 * 86400))
        .default(86400),
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
        .default('info'),
    )
    .addOption(
      opt('--default-secret-ttl <seconds>', 'TTL given to secrets pushed without meta.ttl', 'RKS_DEFAULT_SECRET_TTL')
        .argParser(positiveInt('--default-secret-ttl', 31_536_000))
        .default(300),
    )
    .addOption(
      opt('--login-rate-limit <n>', 'failed admin logins from one address before it must pause a minute', 'RKS_LOGIN_RATE_LIMIT')
        .argParser(positiveInt('--login-rate-limit'))
        .default(DEFAULT_LOGIN_LIMITS.perSource),
    )
    .addOption(
      opt(
        '--login-failure-limit <n>',
        `failed logins of one login name passed to Vault per 15 minutes (Vault locks at ${USERPASS_LOCKOUT.threshold}, set by init)`,
        'RKS_LOGIN_FAILURE_LIMIT',
      )
        .argParser(positiveInt('--login-failure-limit', USERPASS_LOCKOUT.threshold - 1))
        .default(DEFAULT_LOGIN_LIMITS.perLogin),
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
        .default(DEFAULT_MAX_NODES_PER_GROUP),
    )
    .addOption(
      opt('--node-idle-expiry <seconds>', 'forget nodes that neither registered nor renewed through rks for this long', 'RKS_NODE_IDLE_EXPIRY')
        .argParser(positiveInt('--node-idle-expiry', 365 * 86400))
        .default(7 * 86400),
    )
    .addOption(
      opt('--node-token-period <seconds>', 'node tokens live this long between renewals', 'RKS_NODE_TOKEN_PERIOD')
        .argParser(positiveInt('--node-token-period', 31 * 86400))
        .default(600),
    )
    .addOption(
      opt('--group-token-renew-interval <seconds>', 'how often rks renews every group token', 'RKS_GROUP_TOKEN_RENEW_INTERVAL')
        .argParser(positiveInt('--group-token-renew-interval', 7 * 86400))
        .default(3600),
    )
    .addOption(
      opt('--callback-ca-file <file...>', 'extra CA bundle(s) trusted for callback and OAuth URLs', 'RKS_CALLBACK_CA_FILE'),
    )
    .option('--callback-insecure', 'do not verify callback/OAuth TLS certificates (env RKS_CALLBACK_INSECURE=true); logged', false)
    .addOption(
      opt('--callback-timeout <seconds>', 'deadline of a node\'s verification: OAuth token and callback, connect to last byte', 'RKS_CALLBACK_TIMEOUT')
        .argParser(positiveInt('--callback-timeout', 120))
        .default(5),
    )
    .addHelpText(
      'after',
      `
Every option can also be set with the RKS_* environment variable shown; flags win.
TLS: with --cert/--cert-key rks serves that certificate. Otherwise it serves a certificate from
its own CA in Vault (made by init), renewed before it expires; before init it serves an
ephemeral self-signed one and logs its fingerprint.

Example:
  rks serve --vault-addr http://127.0.0.1:8200 --admin-password-file /run/secrets/rks-admin`,
    )
    .action(async (o: ServeOptions, cmd: Command) => {
      if (cmd.getOptionValueSource('tls') !== 'cli' && envFlag('RKS_NO_TLS') === true) o.tls = false;
      if (cmd.getOptionValueSource('requirePsk') !== 'cli' && envFlag('RKS_REQUIRE_PSK') === true) o.requirePsk = true;
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
  const psk = secretFrom(o.psk, o.pskFile);
  const fail = (msg: string): never => {
    logger.fatal(msg);
    process.exit(2);
  };
  if (!vaultAddr) fail('no Vault address: set --vault-addr, RKS_VAULT_ADDR or VAULT_ADDR');
  if (!adminPassword) fail('no administrator password: set --admin-password-file or RKS_ADMIN_PASSWORD');
  if (Boolean(o.cert) !== Boolean(o.certKey)) fail('--cert and --cert-key go together');
  if (Boolean(o.caCert) !== Boolean(o.caCertKey)) fail('--ca-cert and --ca-cert-key go together');
  if (o.requirePsk && !psk) fail('--require-psk needs --psk');
  if (o.certRenewBefore >= o.certLifetime) fail('--cert-renew-before must be shorter than --cert-lifetime');
  const trustProxy = ([] as string[]).concat(o.trustProxy ?? []).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
  for (const p of trustProxy) {
    const [addr, bits, extra] = p.split('/');
    const known = ['loopback', 'linklocal', 'uniquelocal'].includes(p);
    if (!known && (extra !== undefined || !net.isIP(addr) || (bits !== undefined && !/^\d{1,3}$/.test(bits)))) {
      fail(`--trust-proxy: '${p}' is not an address, a CIDR, or one of loopback, linklocal, uniquelocal`);
    }
  }

  let external: TlsFiles | undefined;
  if (o.tls && o.cert && o.certKey) {
    external = { cert: fs.readFileSync(o.cert), key: fs.readFileSync(o.certKey), passphrase: o.certKeyPass };
    try {
      createPrivateKey({ key: external.key, passphrase: o.certKeyPass });
    } catch {
      fail('--cert-key cannot be read: not a PEM private key, or a wrong or missing --cert-key-pass');
    }
  }

  const metrics = createMetrics();
  const vault = new VaultClient({ addr: vaultAddr!, caFile: o.vaultCaFile, registry: metrics.registry });
  const session = new ServiceSession(vault, { login: o.adminLogin, password: adminPassword! }, logger);
  const pki = new PkiService(new Pki(vault), session);
  const names = localNames([o.hostname, ...(o.san ?? [])]);
  let running: RunningServer | undefined;
  const managed =
    o.tls && !external
      ? new ManagedCertificate(
          pki,
          {
            commonName: o.hostname,
            dnsNames: names.dns,
            ipAddresses: names.ips,
            lifetimeSeconds: o.certLifetime,
            renewBeforeSeconds: o.certRenewBefore,
            retrySeconds: 10,
          },
          logger,
          (tls) => running?.setCertificate(tls),
        )
      : undefined;

  const app = createApp({
    vault,
    logger,
    metrics,
    adminLogin: o.adminLogin,
    adminPassword: adminPassword!,
    defaultSecretTtl: o.defaultSecretTtl,
    loginLimits: { perSource: o.loginRateLimit, perLogin: o.loginFailureLimit },
    maxNodesPerGroup: o.maxNodesPerGroup,
    trustProxy,
    session,
    pkiService: pki,
    psk,
    requirePsk: o.requirePsk,
    caBundle: o.caCert ? { certPem: fs.readFileSync(o.caCert, 'utf8'), keyPem: fs.readFileSync(o.caCertKey!, 'utf8') } : undefined,
    onInitialised: () => void managed?.refresh(),
    nodeTokenPeriod: o.nodeTokenPeriod,
    callback: { timeoutMs: o.callbackTimeout * 1000, caFiles: o.callbackCaFile, insecure: o.callbackInsecure },
  });
  const renewer = new GroupTokenRenewer(new Kv(vault), new Tokens(vault), session, logger);
  const pruner = new NodePruner(new Kv(vault), new Tokens(vault), session, o.nodeIdleExpiry * 1000, logger, metrics.nodesPruned);
  const background = [
    new Periodic(o.groupTokenRenewInterval * 1000, () => renewer.renewAll()),
    new Periodic(Math.min(o.nodeIdleExpiry * 1000, 3600_000), () => pruner.pruneAll()),
  ];
  for (const job of background) job.start();

  let tls: TlsFiles | null = external ?? null;
  if (!o.tls) {
    logger.warn('TLS is off (--no-tls): tokens and private keys cross the network in clear text');
  } else if (managed) {
    tls = await managed.start();
    if (managed.current?.selfSigned) {
      const cert = new X509Certificate(tls.cert);
      const pin = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
      logger.warn({ fingerprint: cert.fingerprint256, pinnedPubKey: `sha256//${pin}` }, 'the ephemeral certificate; pin it (curl --pinnedpubkey) to init safely');
      if (o.ephemeralCertOut) {
        fs.mkdirSync(path.dirname(path.resolve(o.ephemeralCertOut)), { recursive: true });
        fs.writeFileSync(o.ephemeralCertOut, tls.cert);
        logger.info({ file: o.ephemeralCertOut }, 'wrote the ephemeral certificate');
      }
    }
  }

  running = await startServer(app, o.listen, tls, logger);
  logger.info({ url: running.url, vault: vault.addr, pskConfigured: Boolean(psk), requirePsk: o.requirePsk }, 'rks listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    managed?.stop();
    await running!.close();
    await Promise.all(background.map((job) => job.stop()));
    vault.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
