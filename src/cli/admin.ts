import fs from 'node:fs';
import { Command } from 'commander';
import { CliError, RksHttp } from './http';
import { readSecret } from '../config';
import type { AcmeIssuerSummary } from '../acme/issuers';
import type { NodeSummary, SecretSummary } from '../secrets/inventory';
import { opt } from './options';
import { positiveInt } from '../settings';

/** Options every command that talks to rks shares. */
interface Conn {
  url: string;
  caCert?: string;
  json?: boolean;
  token?: string;
}

function connected(cmd: Command, tokenHelp = 'admin token (from rks login)'): Command {
  return cmd
    .addOption(opt('--url <url>', 'rks address', 'RKS_URL').default('https://127.0.0.1:8080'))
    .addOption(opt('--ca-cert <file>', 'CA certificate that rks\'s certificate chains to', 'RKS_CA_CERT'))
    .addOption(opt('--token <token>', tokenHelp, 'RKS_TOKEN'))
    .option('--json', 'print JSON, for scripts');
}

async function call(o: Conn, method: string, path: string, opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {}): Promise<unknown> {
  const token = opts.token ?? o.token;
  if (!token) throw new CliError('no token: pass --token or set RKS_TOKEN (rks login prints one)', 2);
  const http = new RksHttp({ url: o.url, caCert: o.caCert });
  const res = await http.request(method, path, {
    headers: { 'X-Vault-Token': token, ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...opts.headers },
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
  });
  return res.data ? JSON.parse(res.data) : null;
}

/** Prints `value` as JSON with --json, else the human form. */
function out(o: Conn, value: unknown, human?: string): void {
  if (o.json) process.stdout.write(`${JSON.stringify(value ?? { ok: true }, null, 2)}\n`);
  else if (human !== undefined) process.stdout.write(human.endsWith('\n') || human === '' ? human : `${human}\n`);
}

const enc = encodeURIComponent;

const SAVE_HELP = 'write the token to this file (mode 0600, replaced at once: a running rks edge reading it never sees half a token) instead of printing it';

/**
 * Writes a token or key readable by its owner only: a new file beside it, then a rename, so a
 * reader (rks edge --group-token-file) sees the old content or the new, never a partial one.
 */
function saveSecretFile(file: string, content: string, what: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, `${content}\n`, { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new CliError(`--save: cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 2);
  }
  process.stderr.write(`${what} saved to ${file} (mode 0600)\n`);
}

function printToken(o: Conn & { save?: string }, res: { groupToken: string }): void {
  if (o.save) {
    saveSecretFile(o.save, res.groupToken, 'group token');
    if (o.json) out(o, { saved: o.save });
  } else out(o, res, res.groupToken);
}

export function initCommand(): Command {
  return connected(
    new Command('init').description(
      'Prepare Vault for rks with the Vault root token; run again after an upgrade or an admin password change to bring Vault up to date',
    ),
    'Vault root token (or $VAULT_TOKEN)',
  ).action(async (o: Conn) => {
    const answer = (await call(o, 'POST', '/rks/v1/init', { token: o.token ?? process.env.VAULT_TOKEN })) as { upgraded?: string[] } | null;
    if (answer?.upgraded) out(o, answer, `rks brought up to date: ${answer.upgraded.join(', ')}`);
    else out(o, { initialised: true }, 'rks initialised');
  });
}

export function loginCommand(): Command {
  return connected(new Command('login').description('Log in as the administrator and print the admin token'))
    .addOption(opt('--login <name>', 'administrator login', 'RKS_ADMIN_LOGIN').default('admin'))
    .addOption(opt('--password <password>', 'password (prefer --password-file)', 'RKS_ADMIN_PASSWORD'))
    .addOption(opt('--password-file <file>', 'file holding the password', 'RKS_ADMIN_PASSWORD_FILE'))
    .option('--save <file>', 'also write the token to this file (mode 0600)')
    .action(async (o: Conn & { login: string; password?: string; passwordFile?: string; save?: string }) => {
      const password = readSecret(o.password, o.passwordFile, '--password-file');
      if (!password) throw new CliError('no password: pass --password-file or set RKS_ADMIN_PASSWORD', 2);
      const http = new RksHttp({ url: o.url, caCert: o.caCert });
      const res = await http.request('POST', '/rks/v1/admin/login', {
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ login: o.login, password }),
      });
      const { adminToken } = JSON.parse(res.data) as { adminToken: string };
      if (o.save) saveSecretFile(o.save, adminToken, 'admin token');
      out(o, { adminToken }, adminToken);
    });
}

interface GroupFlags extends Conn {
  callbackUrl?: string;
  oauthUrl?: string;
  oauthClientId?: string;
  oauthClientSecret?: string;
  oauthClientSecretFile?: string;
}

function groupFlags(cmd: Command): Command {
  return cmd
    .option('--callback-url <url>', 'verify nodes with GET <url>/<nodeId> (https)')
    .option('--oauth-url <url>', 'OAuth2 client-credentials token URL of the group manager')
    .option('--oauth-client-id <id>', 'OAuth2 client id')
    .option('--oauth-client-secret <secret>', 'OAuth2 client secret (prefer the file)')
    .option('--oauth-client-secret-file <file>', 'file holding the OAuth2 client secret');
}

function groupInfo(o: GroupFlags, base = { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' }) {
  return {
    callbackURL: o.callbackUrl ?? base.callbackURL,
    oauthURL: o.oauthUrl ?? base.oauthURL,
    oauthClientID: o.oauthClientId ?? base.oauthClientID,
    oauthClientSecret: readSecret(o.oauthClientSecret, o.oauthClientSecretFile, '--oauth-client-secret-file') ?? base.oauthClientSecret,
  };
}

function showGroup(info: Record<string, string>): string {
  return [
    `callbackURL        ${info.callbackURL || '(none: nodes are not verified)'}`,
    `oauthURL           ${info.oauthURL || '-'}`,
    `oauthClientID      ${info.oauthClientID || '-'}`,
    `oauthClientSecret  ${info.oauthClientSecret ? '(set)' : '-'}`,
  ].join('\n');
}

export function groupCommand(): Command {
  const group = new Command('group').description('Groups of nodes: create, inspect, rotate, associate secrets, revoke nodes');
  connected(group.command('list').description('Every group with its number of secrets and nodes')).action(async (o: Conn) => {
    const all: { name: string; callback: boolean; secrets: number; nodes: number }[] = [];
    for (let next: string | undefined = ''; next !== undefined; ) {
      const page = (await call(o, 'GET', `/rks/v1/groups?limit=1000${next ? `&after=${enc(next)}` : ''}`)) as { groups: typeof all; next?: string };
      all.push(...page.groups);
      next = page.next;
    }
    out(o, all, table(['NAME', 'CALLBACK', 'SECRETS', 'NODES'], all.map((g) => [g.name, g.callback ? 'yes' : 'no', String(g.secrets), String(g.nodes)])));
  });
  groupFlags(connected(group.command('create').description('Create a group; prints its group token (or saves it with --save)').argument('<group>')))
    .option('--save <file>', SAVE_HELP)
    .action(async (name: string, o: GroupFlags & { save?: string }) => {
      const res = (await call(o, 'POST', `/rks/v1/group/${enc(name)}`, { body: groupInfo(o) })) as { groupToken: string };
      printToken(o, res);
    });
  for (const [verb, path, help] of [
    ['get', '', 'Show a group'],
    ['config', '/config', 'Show a group\'s registration info'],
  ] as const) {
    connected(group.command(verb).description(help).argument('<group>')).action(async (name: string, o: Conn) => {
      const info = (await call(o, 'GET', `/rks/v1/group/${enc(name)}${path}`)) as Record<string, string>;
      out(o, info, showGroup(info));
    });
  }
  groupFlags(connected(group.command('update').description('Change a group\'s registration info (unset flags keep their value)').argument('<group>')))
    .action(async (name: string, o: GroupFlags) => {
      const current = (await call(o, 'GET', `/rks/v1/group/${enc(name)}`)) as ReturnType<typeof groupInfo>;
      const info = (await call(o, 'PUT', `/rks/v1/group/${enc(name)}`, { body: groupInfo(o, current) })) as Record<string, string>;
      out(o, info, showGroup(info));
    });
  connected(group.command('delete').description('Delete a group: its tokens, its nodes\' tokens, its Vault objects').argument('<group>'))
    .action(async (name: string, o: Conn) => {
      await call(o, 'DELETE', `/rks/v1/group/${enc(name)}`);
      out(o, null, `group ${name} deleted`);
    });
  const token = group.command('token').description('The group token');
  connected(token.command('get').description('Print the current group token (or save it with --save)').argument('<group>'))
    .option('--save <file>', SAVE_HELP)
    .action(async (name: string, o: Conn & { save?: string }) => {
      printToken(o, (await call(o, 'GET', `/rks/v1/group/${enc(name)}/grouptoken`)) as { groupToken: string });
    });
  connected(token.command('rotate').description('Issue a new group token; the old one and every node token under it are revoked').argument('<group>'))
    .option('--save <file>', SAVE_HELP)
    .action(async (name: string, o: Conn & { save?: string }) => {
      printToken(o, (await call(o, 'PUT', `/rks/v1/group/${enc(name)}/grouptoken`)) as { groupToken: string });
    });
  connected(group.command('secrets').description('List the secrets the group\'s nodes may read').argument('<group>'))
    .action(async (name: string, o: Conn) => {
      const list = (await call(o, 'GET', `/rks/v1/group/${enc(name)}/secrets`)) as string[];
      out(o, list, list.join('\n'));
    });
  connected(group.command('associate').description('Let the group\'s nodes read a secret').argument('<group>').argument('<fqdn>'))
    .action(async (name: string, fqdn: string, o: Conn) => {
      await call(o, 'POST', `/rks/v1/group/${enc(name)}/secrets/${enc(fqdn)}`);
      out(o, null, `${fqdn} associated with ${name}`);
    });
  connected(group.command('dissociate').description('Take a secret away from the group\'s nodes').argument('<group>').argument('<fqdn>'))
    .action(async (name: string, fqdn: string, o: Conn) => {
      await call(o, 'DELETE', `/rks/v1/group/${enc(name)}/secrets/${enc(fqdn)}`);
      out(o, null, `${fqdn} dissociated from ${name}`);
    });
  connected(group.command('revoke-node').description('Revoke a node: its tokens, and its registrations until `rks node allow`').argument('<group>').argument('<node-id>'))
    .action(async (name: string, nodeId: string, o: Conn) => {
      await call(o, 'DELETE', `/rks/v1/group/${enc(name)}/nodes/${enc(nodeId)}`);
      out(o, null, `node ${nodeId} of ${name} revoked`);
    });
  return group;
}

interface PushFlags extends Conn {
  cert: string;
  key: string;
  chain?: string;
  ttl?: number;
}

function read(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`cannot read ${what} ${file}`, 2);
  }
}

function secretBody(o: PushFlags) {
  const certificate = read(o.cert, 'certificate') + (o.chain ? `\n${read(o.chain, 'chain')}` : '');
  return { data: { certificate, private_key: read(o.key, 'key'), ...(o.ttl ? { meta: { ttl: o.ttl } } : {}) } };
}

function pushFlags(cmd: Command): Command {
  return cmd
    .requiredOption('--cert <file>', 'PEM certificate (may hold the chain too)')
    .requiredOption('--key <file>', 'PEM private key of the certificate')
    .option('--chain <file>', 'PEM intermediate certificates, any order')
    .option('--ttl <seconds>', 'how long nodes may keep the key in memory', positiveInt('--ttl', 31_536_000));
}

/** A push's warnings go to stderr, so scripts reading stdout see the same answer either way. */
function warn(answer: { warnings?: string[] } | null): void {
  for (const w of answer?.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
}

interface SecretBody {
  data: { certificate: string; private_key: string; meta: { ttl: number } };
}

export function secretCommand(): Command {
  const secret = new Command('secret').description('Certificates and keys: push, update, inspect, delete');
  pushFlags(connected(secret.command('push').description('Store a certificate and its key under a name').argument('<fqdn>')))
    .action(async (fqdn: string, o: PushFlags) => {
      const answer = (await call(o, 'POST', `/rks/v1/secret/${enc(fqdn)}`, { body: secretBody(o) })) as { warnings?: string[] } | null;
      warn(answer);
      out(o, answer ?? { warnings: [] }, `${fqdn} stored`);
    });
  pushFlags(connected(secret.command('update').description('Replace the certificate and key of a name (its TTL stays unless --ttl is given)').argument('<fqdn>')))
    .action(async (fqdn: string, o: PushFlags) => {
      // A PUT replaces the whole secret: the TTL in force is sent again unless a new one is given.
      o.ttl ??= ((await call(o, 'GET', `/rks/v1/secret/${enc(fqdn)}/info`)) as SecretSummary).ttl;
      const answer = (await call(o, 'PUT', `/rks/v1/secret/${enc(fqdn)}`, { body: secretBody(o) })) as { warnings?: string[] } | null;
      warn(answer);
      out(o, answer ?? { warnings: [] }, `${fqdn} updated`);
    });
  connected(secret.command('get').description('Print a secret: the certificate chain, then the private key').argument('<fqdn>'))
    .action(async (fqdn: string, o: Conn) => {
      const s = (await call(o, 'GET', `/rks/v1/secret/${enc(fqdn)}`)) as SecretBody;
      out(o, s, `${s.data.certificate.trim()}\n${s.data.private_key.trim()}\n`);
    });
  connected(secret.command('delete').description('Destroy a secret (refused while a group uses it)').argument('<fqdn>'))
    .action(async (fqdn: string, o: Conn) => {
      await call(o, 'DELETE', `/rks/v1/secret/${enc(fqdn)}`);
      out(o, null, `${fqdn} deleted`);
    });
  connected(secret.command('groups').description('List the groups that use a secret').argument('<fqdn>'))
    .action(async (fqdn: string, o: Conn) => {
      const list = (await call(o, 'GET', `/rks/v1/secret/${enc(fqdn)}/groups`)) as string[];
      out(o, list, list.join('\n'));
    });
  connected(secret.command('info').description('Describe a secret\'s certificate (never prints the key); marks expired and expiring ones').argument('<fqdn>'))
    .action(async (fqdn: string, o: Conn) => {
      const info = (await call(o, 'GET', `/rks/v1/secret/${enc(fqdn)}/info`)) as SecretSummary;
      out(
        o,
        info,
        [
          `name         ${info.name}${info.managed ? ' (managed)' : ''}`,
          ...(info.pending
            ? ['certificate  none yet: rks is obtaining the first one (nodes get 404 until then)']
            : info.invalid
              ? [`certificate  INVALID: ${info.invalid}`]
              : [
                `subject      ${info.subject || '-'}`,
                `SANs         ${info.sans?.join(', ') || '-'}`,
                `issuer       ${info.issuer}`,
                `valid        ${info.notBefore} to ${info.notAfter}  ${expiryMark(info)}`,
                `key          ${info.keyType}`,
                `sha256       ${info.sha256Fingerprint}`,
                `chain        ${info.chainLength} certificate(s)`,
              ]),
          `ttl          ${info.ttl} s`,
          `groups       ${info.groups.join(', ') || '-'}`,
          ...(info.renewal
            ? [
                `renewal      from ${info.renewal.issuer}${info.renewal.lifetime ? `, ${info.renewal.lifetime} s certificates renewed ${info.renewal.renewBefore !== undefined ? `${info.renewal.renewBefore} s before the end` : "in the CA's window, not before half their life"}` : ''}`,
                info.renewal.inProgress ? `next try     in progress now (started ${info.renewal.lastAttempt})` : `next try     ${info.renewal.nextAttempt}`,
                ...(info.renewal.lastAttempt ? [`last try     ${info.renewal.lastAttempt}${info.renewal.lastError ? ` failed: ${info.renewal.lastError} (${info.renewal.failures} in a row)` : ''}`] : []),
              ]
            : []),
        ].join('\n'),
      );
    });
  connected(
    secret
      .command('create-managed')
      .description('Create a secret that rks obtains (from its own CA or an ACME issuer) and renews before it expires')
      .argument('<fqdn>'),
  )
    .option('--issuer <name>', 'rks-ca (rks\'s CA in Vault) or an ACME issuer made with `rks acme issuer create`', 'rks-ca')
    .option('--san <name...>', 'more DNS names for the certificate (the secret\'s name is always one)')
    .option('--key-type <type>', 'ec-p256 or rsa-3072', 'ec-p256')
    .option('--lifetime <duration>', 'how long each certificate is valid (e.g. 24h, 7d; rks-ca only, default 24h)', duration)
    .option('--renew-before <duration>', 'renew this long before the end (default: at two thirds of the lifetime)', duration)
    .option('--ttl <seconds>', 'how long nodes may keep the key in memory', positiveInt('--ttl', 31_536_000))
    .option('--wait [duration]', 'with an ACME issuer: wait until the first certificate is stored (exit 1 if its first order fails or it takes longer than the duration, 5m by default)', duration)
    .action(async (fqdn: string, o: Conn & { issuer: string; san?: string[]; keyType: string; lifetime?: number; renewBefore?: number; ttl?: number; wait?: number | true }) => {
      const body = { issuer: o.issuer, sans: o.san, keyType: o.keyType, lifetime: o.lifetime, renewBefore: o.renewBefore, ttl: o.ttl };
      let info = (await call(o, 'POST', `/rks/v1/secret/${enc(fqdn)}/managed`, { body })) as SecretSummary;
      if (info.pending && o.wait !== undefined) info = await firstCertificate(o, fqdn, o.wait === true ? 300 : o.wait);
      out(
        o,
        info,
        info.pending
          ? `${fqdn} created; rks is obtaining its certificate from ${o.issuer} (see \`rks secret info ${fqdn}\`)`
          : `${fqdn} created, valid to ${info.notAfter}; renewed from ${info.renewal?.nextAttempt}`,
      );
    });
  connected(secret.command('rollback').description('Put the previous version of a secret back (Vault keeps two)').argument('<fqdn>'))
    .action(async (fqdn: string, o: Conn) => {
      const info = (await call(o, 'POST', `/rks/v1/secret/${enc(fqdn)}/rollback`)) as SecretSummary;
      out(o, info, `${fqdn} rolled back: sha256 ${info.sha256Fingerprint}, valid to ${info.notAfter}`);
    });
  connected(secret.command('list').description('Every secret with its expiry, key and groups, in name order'))
    .option('--expiring <duration>', 'only certificates expiring within this long (e.g. 30d, 12h, 3600), expired ones included', duration)
    .option('--group <group>', 'only the secrets of this group')
    .action(async (o: Conn & { expiring?: number; group?: string }) => {
      const query = new URLSearchParams({ limit: '1000' });
      if (o.expiring !== undefined) query.set('expiring_within', String(o.expiring));
      if (o.group) query.set('group', o.group);
      const all: SecretSummary[] = [];
      for (let next: string | undefined = ''; next !== undefined; ) {
        if (next) query.set('after', next);
        const page = (await call(o, 'GET', `/rks/v1/secrets?${query}`)) as { secrets: SecretSummary[]; next?: string };
        all.push(...page.secrets);
        next = page.next;
      }
      // A managed secret whose renewal fails is said so under the table, with the CA's or Vault's reason.
      const failing = all.filter((s) => s.renewal?.lastError).map((s) => `${s.name}: renewal failed ${s.renewal!.failures} time(s) in a row: ${s.renewal!.lastError}`);
      out(
        o,
        all,
        table(
          ['NAME', 'NOT AFTER', 'EXPIRES', 'KEY', 'TTL', 'GROUPS'],
          all.map((s) => [s.name + (s.managed ? ' (managed)' : ''), s.notAfter ?? '-', s.pending ? 'pending' : s.invalid ? 'INVALID' : expiryMark(s), s.keyType ?? '-', String(s.ttl), s.groups.join(',') || '-']),
        ) + (failing.length ? `\nRENEWAL FAILING:\n${failing.map((f) => `  ${f}`).join('\n')}` : ''),
      );
    });
  return secret;
}


/**
 * Polls a pending managed secret until its first certificate is stored. Its first order failing
 * ends the wait (rks tries again later, on its own schedule), and so does the deadline.
 */
async function firstCertificate(o: Conn, fqdn: string, seconds: number): Promise<SecretSummary> {
  const deadline = Date.now() + seconds * 1000;
  process.stderr.write(`waiting for ${fqdn}'s first certificate`);
  try {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const info = (await call(o, 'GET', `/rks/v1/secret/${enc(fqdn)}/info`)) as SecretSummary;
      if (!info.pending) return info;
      if (info.renewal?.lastError) throw new CliError(`${fqdn}: the first order failed: ${info.renewal.lastError} (rks tries again at ${info.renewal.nextAttempt})`, 1);
      if (Date.now() > deadline) throw new CliError(`${fqdn} is still pending after ${seconds} s (see \`rks secret info ${fqdn}\`)`, 1);
      process.stderr.write('.');
    }
  } finally {
    process.stderr.write('\n');
  }
}

/**
 * "EXPIRED", "in 3 days", with a warning sign in the last third of the certificate's life (and
 * within 30 days): a fresh 30-day or one-hour certificate is not "expiring".
 */
function expiryMark(s: { notBefore?: string; notAfter?: string; expired: boolean }): string {
  const left = (Date.parse(s.notAfter ?? '') - Date.now()) / 1000;
  if (s.expired || left <= 0) return 'EXPIRED';
  const text =
    left < 60 ? `in ${Math.floor(left)} s` : left < 3600 ? `in ${Math.floor(left / 60)} min` : left < 86400 ? `in ${Math.floor(left / 3600)} h` : `in ${Math.floor(left / 86400)} days`;
  const lifetime = (Date.parse(s.notAfter ?? '') - Date.parse(s.notBefore ?? '')) / 1000;
  const warnWithin = Math.min(30 * 86400, Number.isFinite(lifetime) ? lifetime / 3 : 30 * 86400);
  return left < warnWithin ? `${text} (EXPIRING)` : text;
}

/** Columns padded to their widest cell. */
function table(head: string[], rows: string[][]): string {
  if (rows.length === 0) return '(none)';
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

/** 30d, 12h, 45m, 90s or plain seconds (--expiring, --lifetime, --renew-before). */
function duration(value: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (!m) throw new CliError(`'${value}' is not a duration (30d, 12h, 45m, 90s or seconds)`, 2);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

export function nodeCommand(): Command {
  const node = new Command('node').description('Edge nodes: register, renew, list, allow back');
  connected(node.command('register').description('Register a node with a group token; prints the node token'), 'group token')
    .addOption(opt('--node-id <id>', 'the node\'s id', 'RKS_NODE_ID').makeOptionMandatory())
    .action(async (o: Conn & { nodeId: string }) => {
      const res = (await call(o, 'POST', '/rks/v1/node', { headers: { 'X-LCDN-nodeId': o.nodeId } })) as { nodeToken: string; ttl: number };
      if (!o.json) process.stderr.write(`node token valid for ${res.ttl} s; renew it before then\n`);
      out(o, res, res.nodeToken);
    });
  connected(node.command('renew').description('Renew a group or node token; prints its new TTL'), 'the token to renew')
    .action(async (o: Conn) => {
      const res = (await call(o, 'POST', '/rks/v1/auth/token/renew-self')) as { nodeToken: string; ttl: number };
      out(o, { ttl: res.ttl }, `${res.ttl}`);
    });
  connected(node.command('list').description('A group\'s nodes: when each registered and when rks last saw it (about an hour\'s accuracy)').argument('<group>'))
    .action(async (group: string, o: Conn) => {
      const all: NodeSummary[] = [];
      const query = new URLSearchParams({ limit: '1000' });
      for (let next: string | undefined = ''; next !== undefined; ) {
        if (next) query.set('after', next);
        const page = (await call(o, 'GET', `/rks/v1/group/${enc(group)}/nodes?${query}`)) as { nodes: NodeSummary[]; next?: string };
        all.push(...page.nodes);
        next = page.next;
      }
      out(o, all, table(['NODE', 'REGISTERED', 'LAST SEEN'], all.map((n) => [n.nodeId, n.revokedAt ? `REVOKED ${n.revokedAt}` : n.registeredAt ?? '-', n.seenAt ?? '-'])));
    });
  connected(node.command('allow').description('Let a node an administrator revoked register again').argument('<group>').argument('<node-id>'))
    .action(async (group: string, nodeId: string, o: Conn) => {
      await call(o, 'POST', `/rks/v1/group/${enc(group)}/nodes/${enc(nodeId)}/allow`);
      out(o, null, `node ${nodeId} of ${group} may register again`);
    });
  return node;
}

/** `rks status`: is rks up and ready, on which Vault, with which CA and version. */
export function statusCommand(): Command {
  return connected(new Command('status').description('Server, Vault and readiness, the CA fingerprint and the version (no token needed)')).action(async (o: Conn) => {
    const http = new RksHttp({ url: o.url, caCert: o.caCert });
    const live = await http.request('GET', '/healthz');
    const ready = await http.raw('GET', '/readyz');
    const r = JSON.parse(ready.data) as { status: string; reasons: string[]; version?: string; vault: { active?: string; nodes: { addr: string; state: string }[] } };
    const ca = await http.raw('GET', '/ca/cert');
    const fingerprint = ca.status === 200 ? new (require('node:crypto') as typeof import('node:crypto')).X509Certificate(ca.data).fingerprint256 : undefined;
    const status = { url: o.url, live: live.status === 200, ready: r.status === 'ready', reasons: r.reasons, version: r.version, vault: r.vault, caFingerprint: fingerprint };
    out(
      o,
      status,
      [
        `rks       ${o.url}  ${r.version ? `version ${r.version}` : ''}`,
        `ready     ${status.ready ? 'yes' : `no: ${r.reasons.join('; ')}`}`,
        `vault     ${r.vault.nodes.map((n) => `${n.addr} ${n.state}`).join(', ') || '-'}${r.vault.active ? `  (active: ${r.vault.active})` : ''}`,
        `CA        ${fingerprint ?? 'not served yet (rks is not initialised)'}`,
      ].join('\n'),
    );
    if (!status.ready) process.exitCode = 1;
  });
}

/** `rks acme issuer …`: the ACME CAs managed secrets may come from. */
export function acmeCommand(): Command {
  const acme = new Command('acme').description('ACME issuers (Let\'s Encrypt, ZeroSSL, Vault\'s PKI, Pebble, …) for managed secrets');
  const issuer = acme.command('issuer').description('Register, list, describe and deactivate ACME accounts');
  const line = (i: AcmeIssuerSummary) => `${i.name}  ${i.status}  ${i.directory}  ${i.contact.join(',') || '-'}`;
  connected(issuer.command('create').description('Register an account at an ACME CA (rks makes and keeps its key) under a name').argument('<name>'))
    .requiredOption('--directory <url>', 'the ACME directory URL, e.g. https://acme-staging-v02.api.letsencrypt.org/directory')
    .option('--contact <e-mail...>', 'addresses the CA may write to (expiry notices, policy changes)')
    .option('--agree-tos', 'agree to the CA\'s terms of service (required; without it rks names them)')
    .option('--ca-bundle <file>', 'PEM CA certificates to trust for the directory instead of the system\'s')
    .option('--eab-kid <kid>', 'external account binding key id, from the CA')
    .addOption(opt('--eab-hmac-key-file <file>', 'file holding the external account binding HMAC key (base64url)', 'RKS_EAB_HMAC_KEY_FILE'))
    .action(async (name: string, o: Conn & { directory: string; contact?: string[]; agreeTos?: boolean; caBundle?: string; eabKid?: string; eabHmacKeyFile?: string }) => {
      const hmacKey = readSecret(undefined, o.eabHmacKeyFile, '--eab-hmac-key-file');
      if (Boolean(o.eabKid) !== Boolean(hmacKey)) throw new CliError('--eab-kid and --eab-hmac-key-file go together', 2);
      const body = {
        directory: o.directory,
        contact: o.contact,
        termsOfServiceAgreed: Boolean(o.agreeTos),
        ...(o.caBundle ? { caBundle: read(o.caBundle, '--ca-bundle') } : {}),
        ...(o.eabKid ? { externalAccountBinding: { kid: o.eabKid, hmacKey: hmacKey! } } : {}),
      };
      const i = (await call(o, 'POST', `/rks/v1/acme/issuers/${enc(name)}`, { body })) as AcmeIssuerSummary;
      out(o, i, `issuer ${i.name} registered: ${i.accountUrl}`);
    });
  connected(issuer.command('list').description('Every ACME issuer')).action(async (o: Conn) => {
    const all = (await call(o, 'GET', '/rks/v1/acme/issuers')) as AcmeIssuerSummary[];
    out(o, all, table(['NAME', 'STATUS', 'DIRECTORY', 'CONTACT'], all.map((i) => [i.name, i.status, i.directory, i.contact.join(',') || '-'])));
  });
  connected(issuer.command('info').description('One ACME issuer (never its key)').argument('<name>')).action(async (name: string, o: Conn) => {
    const i = (await call(o, 'GET', `/rks/v1/acme/issuers/${enc(name)}`)) as AcmeIssuerSummary;
    out(o, i, `${line(i)}\naccount ${i.accountUrl}\ncreated ${i.createdAt}${i.deactivatedAt ? `\ndeactivated ${i.deactivatedAt}` : ''}`);
  });
  connected(issuer.command('deactivate').description('Deactivate the account at the CA, for good; its secrets stop renewing').argument('<name>'))
    .action(async (name: string, o: Conn) => {
      const i = (await call(o, 'POST', `/rks/v1/acme/issuers/${enc(name)}/deactivate`)) as AcmeIssuerSummary;
      out(o, i, `issuer ${i.name} deactivated`);
    });
  return acme;
}

