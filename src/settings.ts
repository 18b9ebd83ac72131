import fs from 'node:fs';
import os from 'node:os';
import { InvalidArgumentError } from 'commander';
import { parseListen } from './address';
import { STRONG_PASSWORD_BITS } from './admin/strength';
import type { LogLevel } from './log';
import { NAME_PATTERN, NAME_RULE } from './names';
import { USERPASS_LOCKOUT } from './vault/layout';

/**
 * One declaration per setting of `rks serve`: its flag, its RKS_* variable, its default, how its
 * value is read and what it means. The command's options, the configuration's fields, the
 * README's table and the test harness's configuration all follow from this table: adding a
 * setting is one entry here plus the code that uses it (`config.<key>`).
 */
export interface SettingSpec<T> {
  /** The flag with its argument, as commander takes it: `--vault-timeout <seconds>`. */
  flag: string;
  /** Its environment variable (also its name in a settings file). */
  env: string;
  /** Used when neither flag, environment nor file gives one; a function when it depends on the host. */
  default?: T | (() => T);
  /** Reads a given value; throws InvalidArgumentError with the reason. */
  parse?: (raw: string) => T;
  choices?: readonly string[];
  /** One line for `--help` and the README. */
  help: string;
  /** The README's default column, when the value alone would not say it. */
  shownDefault?: string;
  /** Never printed (`--print-config` shows `(hidden)`). */
  secret?: true;
  /** A switch: on when given (or its variable is true); `invert` for `--no-…` switches, on by default. */
  toggle?: { invert?: true };
  /** The command refuses to run without it. */
  required?: true;
}

/** A parser of whole numbers above 0, at most `max`. */
export function positiveInt(flag: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a positive integer`);
    if (n > max) throw new InvalidArgumentError(`${flag} must be at most ${max}`);
    return n;
  };
}

/** 0 or more, at most `max`. */
export function wholeNumber(flag: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${flag} must be 0 or a positive integer`);
    if (n > max) throw new InvalidArgumentError(`${flag} must be at most ${max}`);
    return n;
  };
}

/** `host:port`, `[v6]:port` or `port`, checked. */
function listenAddress(value: string): string {
  try {
    parseListen(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

/** A whole number above 0 with its unit as the flag's argument, its variable the flag in RKS_ form. */
const numeric = (unit: string) => (flag: string, dflt: number, max: number, help: string): SettingSpec<number> => ({
  flag: `${flag} <${unit}>`,
  env: `RKS_${flag.slice(2).toUpperCase().replace(/-/g, '_')}`,
  default: dflt,
  parse: positiveInt(flag, max),
  help,
});
const seconds = numeric('seconds');
const count = numeric('n');
const text = (flag: string, env: string, help: string, extra: Partial<SettingSpec<string>> = {}): SettingSpec<string | undefined> => ({ flag, env, help, ...extra });
const list = (flag: string, env: string, help: string, extra: Partial<SettingSpec<string[]>> = {}): SettingSpec<string[] | undefined> => ({ flag, env, help, ...extra });
const toggle = (flag: string, env: string, help: string, invert?: true): SettingSpec<boolean> => ({ flag, env, help, default: Boolean(invert), toggle: invert ? { invert } : {} });

const logLevel = (help: string) => ({ flag: '--log-level <level>', env: 'RKS_LOG_LEVEL', default: 'info', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], help }) as SettingSpec<LogLevel>;

/** A node id: a name, as the API's rule says. */
function nodeId(value: string): string {
  if (!NAME_PATTERN.test(value)) throw new InvalidArgumentError(`'${value}' is no node id: use ${NAME_RULE}`);
  return value;
}

function octalMode(value: string): number {
  if (!/^0?[0-7]{3}$/.test(value)) throw new InvalidArgumentError('--agent-socket-mode: an octal file mode, such as 600 or 660');
  return parseInt(value, 8);
}

/** Where rks is and how to trust it: the same two settings on every command that talks to rks. */
export const CONNECTION = {
  url: text('--url <url>', 'RKS_URL', 'rks address', { default: 'https://127.0.0.1:8080' }) as SettingSpec<string>,
  caCert: text('--ca-cert <file>', 'RKS_CA_CERT', "CA certificate that rks's TLS certificate chains to"),
} satisfies Record<string, SettingSpec<unknown>>;

export const SETTINGS = {
  vaultAddr: list('--vault-addr <url...>', 'RKS_VAULT_ADDR', 'Vault/OpenBao address; repeat it or separate with commas to give every node of a cluster, rks sends to the active one (falls back to $VAULT_ADDR)'),
  vaultCaFile: text('--vault-ca-file <file>', 'RKS_VAULT_CA_FILE', "PEM bundle to trust for Vault's TLS certificate", { shownDefault: 'system CAs' }),
  vaultTimeout: seconds('--vault-timeout', 2, 60, 'deadline of each call to Vault, failover and retries included; past it the client gets 503'),
  vaultMaxInFlight: count('--vault-max-in-flight', 256, 100_000, 'calls waiting on Vault at once; beyond it clients get a fast 503 with Retry-After'),
  expiryWarningDays: numeric('days')('--expiry-warning-days', 14, 3650, 'log a warning for each certificate entering its last days'),
  expiryCheckInterval: seconds('--expiry-check-interval', 300, 86400, "how often rks looks at every certificate's expiry (metrics, warnings)"),
  expiryMetricLimit: {
    ...count('--expiry-metric-limit', 0, 100_000, 'rks_secret_expiry_timestamp_seconds series for the soonest-expiring secrets, named: anyone who reaches /metrics reads those names (0: none, only the counts)'),
    parse: wholeNumber('--expiry-metric-limit', 100_000),
  },
  managedCheckInterval: seconds('--managed-check-interval', 30, 3600, 'how often rks looks for managed secrets due for renewal'),
  acmeTimeout: seconds('--acme-timeout', 10, 120, 'deadline of each request to an ACME CA'),
  listen: text('--listen <host:port>', 'RKS_LISTEN', 'address to listen on', { default: '0.0.0.0:8080', parse: listenAddress }) as SettingSpec<string>,
  adminLogin: text('--admin-login <name>', 'RKS_ADMIN_LOGIN', 'administrator login created by init', { default: 'admin' }) as SettingSpec<string>,
  adminPassword: text('--admin-password <password>', 'RKS_ADMIN_PASSWORD', 'administrator password (prefer --admin-password-file)', { secret: true }),
  adminPasswordFile: text('--admin-password-file <file>', 'RKS_ADMIN_PASSWORD_FILE', 'file holding the administrator password (one of the two is required)'),
  allowWeakAdminPassword: toggle(
    '--allow-weak-admin-password',
    'RKS_ALLOW_WEAK_ADMIN_PASSWORD',
    `start with an administrator password of less than ${STRONG_PASSWORD_BITS} bits: strangers may guess it from many addresses`,
  ),
  cert: text('--cert <file>', 'RKS_CERT', 'PEM server certificate (with its chain) to serve with'),
  certKey: text('--cert-key <file>', 'RKS_CERT_KEY', 'PEM private key of --cert (may be encrypted)'),
  certKeyPass: text('--cert-key-pass <passphrase>', 'RKS_CERT_KEY_PASS', 'passphrase of an encrypted --cert-key', { secret: true }),
  hostname: text('--hostname <name>', 'RKS_HOSTNAME', "common name of rks's own certificate", { default: () => os.hostname(), shownDefault: 'host name' }) as SettingSpec<string>,
  san: list('--san <name...>', 'RKS_SAN', "extra DNS names or IP addresses for rks's own certificate"),
  certLifetime: { ...seconds('--cert-lifetime', 30 * 86400, 365 * 86400, "lifetime of rks's own certificate"), shownDefault: '2592000 (30 days)' },
  certRenewBefore: { ...seconds('--cert-renew-before', 86400, 365 * 86400, "renew rks's own certificate this long before it expires"), shownDefault: '86400 (1 day)' },
  caCert: text('--ca-cert <file>', 'RKS_CA_CERT_FILE', 'at init, import this CA certificate instead of generating one in Vault', { shownDefault: 'generated in Vault' }),
  caCertKey: text('--ca-cert-key <file>', 'RKS_CA_CERT_KEY', 'the private key of --ca-cert'),
  psk: text('--psk <passphrase>', 'RKS_PSK', 'pre-shared key of the trust bootstrap (/ca/cert, /ca/sign)', { secret: true }),
  pskFile: text('--psk-file <file>', 'RKS_PSK_FILE', 'file holding the pre-shared key'),
  requirePsk: toggle('--require-psk', 'RKS_REQUIRE_PSK', 'every API request must also carry a PSK JWT'),
  tls: toggle('--no-tls', 'RKS_NO_TLS', 'serve plain HTTP; only behind a TLS-terminating proxy', true),
  ephemeralCertOut: text('--ephemeral-cert-out <file>', 'RKS_EPHEMERAL_CERT_OUT', 'write the ephemeral self-signed certificate served before init here, for clients to trust'),
  logLevel: logLevel('log level of the JSON logs (pino), with request ids'),
  defaultSecretTtl: seconds('--default-secret-ttl', 300, 31_536_000, 'TTL given to secrets pushed without meta.ttl'),
  loginRateLimit: count('--login-rate-limit', 10, Number.MAX_SAFE_INTEGER, 'failed admin logins from one source address (an IPv6 /64) before it must pause a minute'),
  loginFailureLimit: count(
    '--login-failure-limit',
    5,
    USERPASS_LOCKOUT.threshold - 1,
    `failed logins of one login name (other than the configured administrator's) passed to Vault per 15 minutes (Vault locks at ${USERPASS_LOCKOUT.threshold}, set by init)`,
  ),
  trustProxy: list('--trust-proxy <address...>', 'RKS_TRUST_PROXY', 'proxies (addresses, CIDRs, loopback, linklocal, uniquelocal) whose X-Forwarded-For names the client, for the login limits and logs'),
  maxNodesPerGroup: count('--max-nodes-per-group', 10_000, 1_000_000, 'most nodes a group may have registered (bounds what a group token can create in Vault)'),
  nodeIdleExpiry: seconds('--node-idle-expiry', 7 * 86400, 365 * 86400, 'forget nodes that neither registered nor renewed through rks for this long'),
  nodeTokenPeriod: seconds('--node-token-period', 600, 31 * 86400, 'node tokens live this long between renewals'),
  groupTokenRenewInterval: seconds('--group-token-renew-interval', 3600, 7 * 86400, 'how often rks renews every group token'),
  callbackCaFile: list('--callback-ca-file <file...>', 'RKS_CALLBACK_CA_FILE', 'extra CA bundle(s) trusted for callback and OAuth URLs', { shownDefault: 'system CAs' }),
  callbackInsecure: toggle('--callback-insecure', 'RKS_CALLBACK_INSECURE', 'do not verify callback/OAuth TLS certificates (logged at start)'),
  callbackTimeout: seconds('--callback-timeout', 5, 120, "deadline of a node's verification: OAuth token and callback, from connecting to the last byte"),
  shutdownGrace: seconds('--shutdown-grace', 10, 3600, 'on SIGTERM or SIGINT, how long requests in flight may take to finish before their connections are closed'),
} satisfies Record<string, SettingSpec<unknown>>;

/** One declaration per setting of `rks edge`, as for `rks serve`: its options and the README's table follow from it. */
export const EDGE_SETTINGS = {
  listen: text('--listen <host:port>', 'RKS_EDGE_LISTEN', 'address to serve HTTPS on (--no-listen: none, nginx or HAProxy terminates TLS)', { default: '0.0.0.0:8443' }),
  upstream: text(
    '--upstream <url>',
    'RKS_EDGE_UPSTREAM',
    'pass what --listen receives to an origin: http://host:port (HTTP/1.1, with X-Forwarded-For and -Proto) or tcp://host:port (the bytes, after a PROXY protocol v2 header)',
  ),
  agentSocket: text(
    '--agent-socket <path>',
    'RKS_EDGE_AGENT_SOCKET',
    "also answer local TLS servers on this Unix socket: nginx's Lua module asks it for each handshake's certificate, HAProxy for ACME challenges",
  ),
  agentSocketMode: { flag: '--agent-socket-mode <octal>', env: 'RKS_EDGE_AGENT_SOCKET_MODE', default: 0o600, shownDefault: '`600`', parse: octalMode, help: 'file mode of the agent socket: whoever may open it may read the keys' } as SettingSpec<number>,
  httpListen: text('--http-listen <host:port>', 'RKS_EDGE_HTTP_LISTEN', 'also serve plain HTTP here, answering ACME HTTP-01 challenges for rks (CAs validate on port 80: 0.0.0.0:80)'),
  haproxySocket: text('--haproxy-socket <path>', 'RKS_EDGE_HAPROXY_SOCKET', "keep this HAProxy's certificates in step with what the node may serve, through its runtime API (stats socket, level admin)"),
  haproxyCrtList: text('--haproxy-crt-list <path>', 'RKS_EDGE_HAPROXY_CRT_LIST', "the crt-list of HAProxy's `bind … ssl crt-list <path> strict-sni`, as written there (with --haproxy-socket)"),
  ...CONNECTION,
  groupToken: text('--group-token <token>', 'RKS_GROUP_TOKEN', 'the group token (prefer --group-token-file)', { secret: true }),
  groupTokenFile: text('--group-token-file <file>', 'RKS_GROUP_TOKEN_FILE', 'file holding the group token, read again at each registration (a rotated token reaches a running edge)'),
  nodeId: text('--node-id <id>', 'RKS_NODE_ID', `this node's id (X-LCDN-nodeId: ${NAME_RULE})`, { parse: nodeId, required: true }) as SettingSpec<string>,
  revalidateInterval: {
    ...seconds('--revalidate-interval', 8, 3600, 'how often to ask rks what this node may still serve (revocations reach the edge within it)'),
    env: 'RKS_EDGE_REVALIDATE_INTERVAL',
  },
  logLevel: logLevel('log level of the JSON logs'),
} satisfies Record<string, SettingSpec<unknown>>;

export type SettingKey = keyof typeof SETTINGS;

/** Each setting's value as rks runs with it. */
export type Settings = { -readonly [K in SettingKey]: (typeof SETTINGS)[K] extends SettingSpec<infer T> ? T : never };

/** Every setting at its default (host-dependent ones computed now). */
export function settingDefaults(): Settings {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [string, SettingSpec<unknown>][]) out[key] = typeof s.default === 'function' ? (s.default as () => unknown)() : s.default;
  return out as Settings;
}

/** A table of settings for the README, made from the declarations (`make readme` writes it). */
export function settingsTable(table: Record<string, SettingSpec<unknown>> = SETTINGS): string {
  const rows = (Object.values(table) as SettingSpec<unknown>[]).map((s) => {
    const env = s.toggle ? `${s.env}=true` : s.env;
    const dflt = s.shownDefault ?? (s.required ? 'required' : s.toggle ? 'off' : s.default === undefined ? '' : `\`${s.default}\``);
    return `| \`${s.flag}\` | \`${env}\` | ${dflt} | ${s.help.replace(/\|/g, '\\|')} |`;
  });
  return ['| flag | environment | default | |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** A configuration or flags that cannot work: the command says why (and where, for `flag`) and exits 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The setting at fault, as its flag: where its value came from is said beside the reason. */
    readonly flag?: string,
  ) {
    super(message);
  }
}

/** A setting's file, read (a file that cannot be read is the setting's fault, named by its flag). */
export function readSettingFile(file: string, flag: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, flag);
  }
}

/**
 * A secret given inline or as a file (its flag named in errors); the file wins, and its
 * trailing newline is dropped. Every command reads secrets this way.
 */
export function readSecret(inline: string | undefined, file: string | undefined, flag: string): string | undefined {
  if (file) return readSettingFile(file, flag).toString('utf8').replace(/\r?\n$/, '');
  return inline;
}
