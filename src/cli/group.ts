import { Command } from 'commander';
import { readSecret } from '../settings';
import { Conn, call, connected, enc } from './connection';
import { SAVE_HELP, out, printToken, table } from './output';

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
