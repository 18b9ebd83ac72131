import { Command } from 'commander';
import { Conn, call, connected } from './connection';
import { out } from './output';

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
