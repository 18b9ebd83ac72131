import { createPrivateKey } from 'node:crypto';
import net from 'node:net';
import { weakness } from './admin/strength';
import { Settings, UsageError, readSecret, readSettingFile } from './settings';

/** Settings that the configuration holds in another shape (read, checked, combined). */
const COMPOSITE = ['vaultAddr', 'adminLogin', 'adminPassword', 'adminPasswordFile', 'cert', 'certKey', 'certKeyPass', 'tls', 'caCert', 'caCertKey', 'psk', 'pskFile', 'trustProxy', 'san'] as const;
type Composite = (typeof COMPOSITE)[number];

/** What the composite settings become. */
export type CompositeParts = Pick<Config, 'vaultAddrs' | 'admin' | 'tls' | 'psk' | 'caBundle' | 'trustProxy' | 'san'>;

/**
 * The configuration rks runs with: every setting under its own name (as declared in
 * settings.ts, in the unit of its flag), the composite ones checked, read and combined; frozen.
 */
export interface Config extends Readonly<Omit<Settings, Composite>> {
  /** One address (or a load balancer), or every node of a Vault cluster. */
  vaultAddrs: string[];
  admin: { login: string; password: string };
  /** null: plain HTTP (--no-tls); 'managed': a certificate from rks's CA; or the given files. */
  tls: null | 'managed' | { cert: Buffer; key: Buffer; passphrase?: string };
  psk?: string;
  caBundle?: { certPem: string; keyPem: string };
  trustProxy: string[];
  san: string[];
}


/**
 * Checks the flags as a whole and reads the files they name; throws UsageError. `partial`:
 * only what is given is checked (`--print-config`), a missing Vault address or password is not
 * an error.
 */
export function resolveConfig(f: Settings, env: NodeJS.ProcessEnv = process.env, partial = false): Readonly<Config> {
  const vaultAddrs = vaultAddresses(f.vaultAddr ?? env.VAULT_ADDR);
  const password = readSecret(f.adminPassword, f.adminPasswordFile, '--admin-password-file');
  const psk = readSecret(f.psk, f.pskFile, '--psk-file');
  if (!vaultAddrs.length && !partial) throw new UsageError('no Vault address: set --vault-addr, RKS_VAULT_ADDR or VAULT_ADDR');
  if (!password && !partial) throw new UsageError('no administrator password: set --admin-password-file or RKS_ADMIN_PASSWORD');
  const weak = f.allowWeakAdminPassword || !password ? null : weakness(password);
  if (weak) {
    throw new UsageError(
      `the administrator password is too weak (${weak}): anyone may try passwords at /rks/v1/admin/login from as many addresses as they have, and no limit holds them all without locking the administrator out too. Use 16 or more random characters (head -c 18 /dev/urandom | base64), or accept the risk with --allow-weak-admin-password`,
      f.adminPasswordFile ? '--admin-password-file' : '--admin-password',
    );
  }
  if (Boolean(f.cert) !== Boolean(f.certKey)) throw new UsageError('--cert and --cert-key go together', f.cert ? '--cert' : '--cert-key');
  if (Boolean(f.caCert) !== Boolean(f.caCertKey)) throw new UsageError('--ca-cert and --ca-cert-key go together', f.caCert ? '--ca-cert' : '--ca-cert-key');
  if (f.requirePsk && !psk) throw new UsageError('--require-psk needs --psk', '--require-psk');
  if (f.certRenewBefore >= f.certLifetime) throw new UsageError('--cert-renew-before must be shorter than --cert-lifetime', '--cert-renew-before');

  const trustProxy = ([] as string[])
    .concat(f.trustProxy ?? [])
    .flatMap((x) => x.split(','))
    .map((x) => x.trim())
    .filter(Boolean);
  for (const p of trustProxy) {
    const [addr, bits, extra] = p.split('/');
    const known = ['loopback', 'linklocal', 'uniquelocal'].includes(p);
    if (!known && (extra !== undefined || !net.isIP(addr) || (bits !== undefined && !/^\d{1,3}$/.test(bits)))) {
      throw new UsageError(`--trust-proxy: '${p}' is not an address, a CIDR, or one of loopback, linklocal, uniquelocal`, '--trust-proxy');
    }
  }

  let tls: Config['tls'] = f.tls ? 'managed' : null;
  if (f.tls && f.cert && f.certKey) {
    const given = { cert: readSettingFile(f.cert, '--cert'), key: readSettingFile(f.certKey, '--cert-key'), passphrase: f.certKeyPass };
    try {
      createPrivateKey({ key: given.key, passphrase: f.certKeyPass });
    } catch {
      throw new UsageError('--cert-key cannot be read: not a PEM private key, or a wrong or missing --cert-key-pass', '--cert-key');
    }
    tls = given;
  }

  return configFrom(f, {
    vaultAddrs,
    admin: { login: f.adminLogin, password: password ?? '' },
    tls,
    psk,
    caBundle: f.caCert ? { certPem: readSettingFile(f.caCert, '--ca-cert').toString('utf8'), keyPem: readSettingFile(f.caCertKey!, '--ca-cert-key').toString('utf8') } : undefined,
    trustProxy,
    san: f.san ?? [],
  });
}

/** The frozen configuration: every plain setting under its name, and the composite ones' parts. */
export function configFrom(settings: Settings, parts: CompositeParts): Readonly<Config> {
  const plain = Object.fromEntries(Object.entries(settings).filter(([key]) => !(COMPOSITE as readonly string[]).includes(key)));
  return Object.freeze({ ...(plain as Omit<Settings, Composite>), ...parts });
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
      throw new UsageError(`--vault-addr: '${a}' is not an http:// or https:// address (scheme, host and port only)`, '--vault-addr');
    }
  }
  return [...new Set(addrs)];
}


