import { Command, InvalidArgumentError } from 'commander';
import type { AcmeIssuerSummary } from '../acme/issuers';
import type { OrderBudget, PacingView } from '../acme/pacing';
import { readSecret } from '../settings';
import { CliError } from './http';
import { duration, opt } from './options';
import { Conn, call, connected, enc } from './connection';
import { out, readInput, table } from './output';

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
    .option('--order-budget <orders/window>', "new orders the account may place in any window, e.g. 300/3h (the default: Let's Encrypt's limit); more wait in a queue", orderBudget)
    .action(async (name: string, o: Conn & { directory: string; contact?: string[]; agreeTos?: boolean; caBundle?: string; eabKid?: string; eabHmacKeyFile?: string; orderBudget?: OrderBudget }) => {
      const hmacKey = readSecret(undefined, o.eabHmacKeyFile, '--eab-hmac-key-file');
      if (Boolean(o.eabKid) !== Boolean(hmacKey)) throw new CliError('--eab-kid and --eab-hmac-key-file go together', 2);
      const body = {
        directory: o.directory,
        contact: o.contact,
        termsOfServiceAgreed: Boolean(o.agreeTos),
        ...(o.caBundle ? { caBundle: readInput(o.caBundle, '--ca-bundle') } : {}),
        ...(o.eabKid ? { externalAccountBinding: { kid: o.eabKid, hmacKey: hmacKey! } } : {}),
        ...(o.orderBudget ? { orderBudget: o.orderBudget } : {}),
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
  connected(issuer.command('budget').description("Change an issuer's order budget, e.g. 600/3h when the CA raised the account's limit").argument('<name>').argument('<orders/window>', 'orders per window, e.g. 300/3h', orderBudget))
    .action(async (name: string, budget: OrderBudget, o: Conn) => {
      const i = (await call(o, 'PUT', `/rks/v1/acme/issuers/${enc(name)}/budget`, { body: budget })) as AcmeIssuerSummary;
      out(o, i, `issuer ${i.name}: ${i.orderBudget.orders} orders per ${i.orderBudget.windowSeconds} s`);
    });
  connected(issuer.command('deactivate').description('Deactivate the account at the CA, for good; its secrets stop renewing').argument('<name>'))
    .action(async (name: string, o: Conn) => {
      const i = (await call(o, 'POST', `/rks/v1/acme/issuers/${enc(name)}/deactivate`)) as AcmeIssuerSummary;
      out(o, i, `issuer ${i.name} deactivated`);
    });
  connected(
    acme
      .command('status')
      .description("Where each issuer's orders stand: its budget and the orders in the window, the next slot, a pause the CA asked for, the queue and when it is through, failing names and why")
      .argument('[name]', 'one issuer (default: every one)'),
  ).action(async (name: string | undefined, o: Conn) => {
    const names = name ? [name] : ((await call(o, 'GET', '/rks/v1/acme/issuers')) as AcmeIssuerSummary[]).map((i) => i.name);
    const all = [];
    for (const n of names) all.push((await call(o, 'GET', `/rks/v1/acme/issuers/${enc(n)}`)) as AcmeIssuerStatus);
    out(o, name ? all[0] : all, all.map(statusText).join('\n\n') || 'no ACME issuer');
  });
  return acme;
}

type AcmeIssuerStatus = AcmeIssuerSummary & {
  queue: PacingView & { pending: number; due: number; queued: number; failing: number; failures: { name: string; failures: number; lastError: string }[] };
};

function statusText(i: AcmeIssuerStatus): string {
  const q = i.queue;
  const hours = i.orderBudget.windowSeconds / 3600;
  return [
    `${i.name}  ${i.status}  ${i.directory}`,
    `budget       ${i.orderBudget.orders} orders per ${Number.isInteger(hours) ? `${hours} h` : `${i.orderBudget.windowSeconds} s`}; ${q.placedInWindow} placed in the window now`,
    `next slot    ${Date.parse(q.nextSlot) <= Date.now() ? 'now' : q.nextSlot}`,
    ...(q.pausedUntil ? [`paused       until ${q.pausedUntil}: ${q.pauseReason ?? 'the CA asked to wait'}`] : []),
    `queue        ${q.queued} waiting for a slot, ${q.pending} waiting for a first certificate, ${q.due} being ordered${q.queueThrough ? `; through by ${q.queueThrough}` : ''}`,
    `failing      ${q.failing}`,
    ...q.failures.map((f) => `  ${f.name}: ${f.failures} failure(s) in a row: ${f.lastError}`),
  ].join('\n');
}

/** `300/3h`: orders per window. */
function orderBudget(value: string): OrderBudget {
  const m = /^(\d+)\/(.+)$/.exec(value.trim());
  const orders = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(orders) || orders < 1) throw new InvalidArgumentError('an order budget is orders/window, e.g. 300/3h');
  return { orders, windowSeconds: duration(m[2]!) };
}
