import { Command, Option } from 'commander';
import type { SecretSummary } from '../secrets/inventory';
import { positiveInt } from '../settings';
import { CliError } from './http';
import { Conn, call, connected, enc } from './connection';
import { out, readInput, table } from './output';
import { duration } from './options';

interface PushFlags extends Conn {
  cert: string;
  key: string;
  chain?: string;
  ttl?: number;
}


function secretBody(o: PushFlags) {
  const certificate = readInput(o.cert, 'certificate') + (o.chain ? `\n${readInput(o.chain, 'chain')}` : '');
  return { data: { certificate, private_key: readInput(o.key, 'key'), ...(o.ttl ? { meta: { ttl: o.ttl } } : {}) } };
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
      out(o, info, describe(info));
    });
  createManagedCommand(secret);
  connected(secret.command('rollback').description('Put the previous version of a secret back (Vault keeps two)').argument('<fqdn>'))
    .action(async (fqdn: string, o: Conn) => {
      const info = (await call(o, 'POST', `/rks/v1/secret/${enc(fqdn)}/rollback`)) as SecretSummary;
      out(o, info, `${fqdn} rolled back: sha256 ${info.sha256Fingerprint}, valid to ${info.notAfter}`);
    });
  listCommand(secret);
  return secret;
}


/** `rks secret create-managed`: a secret rks obtains and renews. */
function createManagedCommand(secret: Command): void {
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
        info.renewal?.status === 'queued'
          ? `${fqdn} created; ${o.issuer}'s order budget is spent: its order waits in the queue until ${info.renewal.nextAttempt} (see \`rks acme status ${o.issuer}\`)`
          : info.pending
          ? `${fqdn} created; rks is obtaining its certificate from ${o.issuer} (see \`rks secret info ${fqdn}\`)`
          : `${fqdn} created, valid to ${info.notAfter}; renewed from ${info.renewal?.nextAttempt}`,
      );
    });
}

/** `rks secret list`: every page of the inventory, failing renewals first. */
function listCommand(secret: Command): void {
  connected(secret.command('list').description('Every secret with its expiry, key, renewal and groups: managed secrets whose renewal fails first, then in name order'))
    .option('--expiring <duration>', 'only certificates expiring within this long (e.g. 30d, 12h, 3600), expired ones included', duration)
    .option('--group <group>', 'only the secrets of this group')
    .addOption(new Option('--renewal <state>', 'only managed secrets whose renewal is in this state').choices(['failing', 'queued', 'due', 'pending', 'scheduled']))
    .action(async (o: Conn & { expiring?: number; group?: string; renewal?: string }) => {
      const query = new URLSearchParams({ limit: '1000' });
      if (o.expiring !== undefined) query.set('expiring_within', String(o.expiring));
      if (o.group) query.set('group', o.group);
      if (o.renewal) query.set('renewal', o.renewal);
      const all: SecretSummary[] = [];
      for (let next: string | undefined = ''; next !== undefined; ) {
        if (next) query.set('after', next);
        const page = (await call(o, 'GET', `/rks/v1/secrets?${query}`)) as { secrets: SecretSummary[]; next?: string };
        all.push(...page.secrets);
        next = page.next;
      }
      // Managed secrets whose renewal fails come first (in name order among them), with the CA's or Vault's reason under the table.
      all.sort((a, b) => Number(b.renewal?.status === 'failing') - Number(a.renewal?.status === 'failing'));
      const failing = all.filter((s) => s.renewal?.lastError).map((s) => `${s.name}: renewal failed ${s.renewal!.failures} time(s) in a row: ${s.renewal!.lastError}`);
      out(
        o,
        all,
        table(
          ['NAME', 'NOT AFTER', 'EXPIRES', 'KEY', 'TTL', 'RENEWAL', 'GROUPS'],
          all.map((s) => [s.name, s.notAfter ?? '-', s.pending ? 'pending' : s.invalid ? 'INVALID' : expiryMark(s), s.keyType ?? '-', String(s.ttl), s.renewal?.status ?? '-', s.groups.join(',') || '-']),
        ) + (failing.length ? `\nRENEWAL FAILING:\n${failing.map((f) => `  ${f}`).join('\n')}` : ''),
      );
    });
}

/** What `rks secret info` prints of a secret (never its key). */
function describe(info: SecretSummary): string {
  return [
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
          `status       ${info.renewal.status}`,
          info.renewal.inProgress ? `next try     in progress now (started ${info.renewal.lastAttempt})` : `next try     ${info.renewal.nextAttempt}`,
          ...(info.renewal.lastAttempt ? [`last try     ${info.renewal.lastAttempt}${info.renewal.lastError ? ` failed: ${info.renewal.lastError} (${info.renewal.failures} in a row)` : ''}`] : []),
        ]
      : []),
  ].join('\n');
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
