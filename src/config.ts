import { createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { weakness } from './admin/strength';
import type { CallbackOptions } from './callback/verifier';
import type { LogLevel } from './log';

/** Every default of `rks serve`, in one table (the flags, the app and the README use these). */
export const DEFAULTS = {
  listen: '0.0.0.0:8080',
  adminLogin: 'admin',
  logLevel: 'info' as LogLevel,
  certLifetime: 30 * 86400,
  certRenewBefore: 86400,
  defaultSecretTtl: 300,
  loginRateLimit: 10,
  loginFailureLimit: 5,
  maxNodesPerGroup: 10_000,
  nodeIdleExpiry: 7 * 86400,
  nodeTokenPeriod: 600,
  groupTokenRenewInterval: 3600,
  callbackTimeout: 5,
  vaultTimeout: 2,
  expiryWarningDays: 14,
  expiryCheckInterval: 300,
  expiryMetricLimit: 0,
  managedCheckInterval: 30,
  acmeTimeout: 10,
  vaultMaxInFlight: 256,
  bodyLimit: '64kb',
} as const;

/** What `rks serve` is given: its flags and their RKS_* variables, as commander parsed them. */
export interface ServeFlags {
  vaultAddr?: string[] | string;
  vaultCaFile?: string;
  vaultTimeout: number;
  vaultMaxInFlight: number;
  expiryWarningDays: number;
  expiryCheckInterval: number;
  expiryMetricLimit: number;
  managedCheckInterval: number;
  acmeTimeout: number;
  listen: string;
  adminLogin: string;
  adminPassword?: string;
  adminPasswordFile?: string;
  allowWeakAdminPassword?: boolean;
  cert?: string;
  certKey?: string;
  certKeyPass?: string;
  tls: boolean;
  ephemeralCertOut?: string;
  logLevel: LogLevel;
  defaultSecretTtl: number;
  loginRateLimit: number;
  loginFailureLimit: number;
  maxNodesPerGroup: number;
  trustProxy?: string[] | string;
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
  hostname: string;
  san?: string[];
  certLifetime: number;
  certRenewBefore: number;
}

/** The configuration rks runs with: checked as a whole, files read, frozen. */
export interface Config {
  /** One address (or a load balancer), or every node of a Vault cluster. */
  vaultAddrs: string[];
  vaultCaFile?: string;
  /** Deadline of each call to Vault, failover included (milliseconds). */
  vaultTimeoutMs: number;
  /** Calls waiting on Vault at once before callers get a fast 503. */
  vaultMaxInFlight: number;
  /** Certificate expiry: warn this many days ahead, check this often (seconds), this many metric series. */
  expiry: { warnDays: number; checkInterval: number; seriesLimit: number };
  /** Seconds between looks for managed secrets due for renewal. */
  managedCheckInterval: number;
  /** Deadline of each request to an ACME CA (milliseconds). */
  acmeTimeoutMs: number;
  listen: string;
  admin: { login: string; password: string };
  /** null: plain HTTP (--no-tls); 'managed': a certificate from rks's CA; or the given files. */
  tls: null | 'managed' | { cert: Buffer; key: Buffer; passphrase?: string };
  ephemeralCertOut?: string;
  logLevel: LogLevel;
  defaultSecretTtl: number;
  loginLimits: { perSource: number; perLogin: number };
  maxNodesPerGroup: number;
  trustProxy: string[];
  nodeIdleExpiry: number;
  nodeTokenPeriod: number;
  groupTokenRenewInterval: number;
  callback: CallbackOptions;
  psk?: string;
  requirePsk: boolean;
  caBundle?: { certPem: string; keyPem: string };
  certificate: { hostname: string; san: string[]; lifetime: number; renewBefore: number };
}

/** A configuration or flags that cannot work: the command says why and exits 2. */
export class UsageError extends Error {}

/** Checks the flags as a whole and reads the files they name; throws UsageError. */
export function resolveConfig(f: ServeFlags, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const vaultAddrs = vaultAddresses(f.vaultAddr ?? env.VAULT_ADDR);
  const password = readSecret(f.adminPassword, f.adminPasswordFile, '--admin-password-file');
  const psk = readSecret(f.psk, f.pskFile, '--psk-file');
  if (!vaultAddrs.length) throw new UsageError('no Vault address: set --vault-addr, RKS_VAULT_ADDR or VAULT_ADDR');
  if (!password) throw new UsageError('no administrator password: set --admin-password-file or RKS_ADMIN_PASSWORD');
  const weak = f.allowWeakAdminPassword ? null : weakness(password);
  if (weak) {
    throw new UsageError(
      `the administrator password is too weak (${weak}): anyone may try passwords at /rks/v1/admin/login from as many addresses as they have, and no limit holds them all without locking the administrator out too. Use 16 or more random characters (head -c 18 /dev/urandom | base64), or accept the risk with --allow-weak-admin-password`,
    );
  }
  if (Boolean(f.cert) !== Boolean(f.certKey)) throw new UsageError('--cert and --cert-key go together');
  if (Boolean(f.caCert) !== Boolean(f.caCertKey)) throw new UsageError('--ca-cert and --ca-cert-key go together');
  if (f.requirePsk && !psk) throw new UsageError('--require-psk needs --psk');
  if (f.certRenewBefore >= f.certLifetime) throw new UsageError('--cert-renew-before must be shorter than --cert-lifetime');

  const trustProxy = ([] as string[])
    .concat(f.trustProxy ?? [])
    .flatMap((x) => x.split(','))
    .map((x) => x.trim())
    .filter(Boolean);
  for (const p of trustProxy) {
    const [addr, bits, extra] = p.split('/');
    const known = ['loopback', 'linklocal', 'uniquelocal'].includes(p);
    if (!known && (extra !== undefined || !net.isIP(addr) || (bits !== undefined && !/^\d{1,3}$/.test(bits)))) {
      throw new UsageError(`--trust-proxy: '${p}' is not an address, a CIDR, or one of loopback, linklocal, uniquelocal`);
    }
  }

  let tls: Config['tls'] = f.tls ? 'managed' : null;
  if (f.tls && f.cert && f.certKey) {
    const given = { cert: read(f.cert, '--cert'), key: read(f.certKey, '--cert-key'), passphrase: f.certKeyPass };
    try {
      createPrivateKey({ key: given.key, passphrase: f.certKeyPass });
    } catch {
      throw new UsageError('--cert-key cannot be read: not a PEM private key, or a wrong or missing --cert-key-pass');
    }
    tls = given;
  }

  return Object.freeze({
    vaultAddrs,
    vaultCaFile: f.vaultCaFile,
    vaultTimeoutMs: f.vaultTimeout * 1000,
    vaultMaxInFlight: f.vaultMaxInFlight,
    expiry: { warnDays: f.expiryWarningDays, checkInterval: f.expiryCheckInterval, seriesLimit: f.expiryMetricLimit },
    managedCheckInterval: f.managedCheckInterval,
    acmeTimeoutMs: f.acmeTimeout * 1000,
    listen: f.listen,
    admin: { login: f.adminLogin, password },
    tls,
    ephemeralCertOut: f.ephemeralCertOut,
    logLevel: f.logLevel,
    defaultSecretTtl: f.defaultSecretTtl,
    loginLimits: { perSource: f.loginRateLimit, perLogin: f.loginFailureLimit },
    maxNodesPerGroup: f.maxNodesPerGroup,
    trustProxy,
    nodeIdleExpiry: f.nodeIdleExpiry,
    nodeTokenPeriod: f.nodeTokenPeriod,
    groupTokenRenewInterval: f.groupTokenRenewInterval,
    callback: { timeoutMs: f.callbackTimeout * 1000, caFiles: f.callbackCaFile, insecure: f.callbackInsecure },
    psk,
    requirePsk: f.requirePsk,
    caBundle: f.caCert ? { certPem: read(f.caCert, '--ca-cert').toString('utf8'), keyPem: read(f.caCertKey!, '--ca-cert-key').toString('utf8') } : undefined,
    certificate: { hostname: f.hostname, san: f.san ?? [], lifetime: f.certLifetime, renewBefore: f.certRenewBefore },
  });
}

/** `--vault-addr` given several times, comma-separated, or both; each an http(s) URL. */
function vaultAddresses(given: string[] | string | undefined): string[] {
  const addrs = ([] as string[])
    .concat(given ?? [])
    .flatMap((x) => x.split(','))
    .map((x) => x.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  for (const a of addrs) {
    let url: URL | undefined;
    try {
      url = new URL(a);
    } catch {
      url = undefined;
    }
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search || url.username) {
      throw new UsageError(`--vault-addr: '${a}' is not an http:// or https:// address (scheme, host and port only)`);
    }
  }
  return [...new Set(addrs)];
}

function read(file: string, flag: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * A secret given inline or as a file (its flag named in errors); the file wins, and its
 * trailing newline is dropped. Every command reads secrets this way.
 */
export function readSecret(inline: string | undefined, file: string | undefined, flag: string): string | undefined {
  if (file) return read(file, flag).toString('utf8').replace(/\r?\n$/, '');
  return inline;
}
