import { Command } from 'commander';
import type { NodeSummary } from '../secrets/inventory';
import type { NodeToken } from '../sdk/wire';
import { opt } from './options';
import { Conn, call, connected, enc } from './connection';
import { out, table } from './output';

export function nodeCommand(): Command {
  const node = new Command('node').description('Edge nodes: register, renew, list, allow back');
  connected(node.command('register').description('Register a node with a group token; prints the node token'), 'group token')
    .addOption(opt('--node-id <id>', 'the node\'s id', 'RKS_NODE_ID').makeOptionMandatory())
    .action(async (o: Conn & { nodeId: string }) => {
      const res = (await call(o, 'POST', '/rks/v1/node', { headers: { 'X-LCDN-nodeId': o.nodeId } })) as NodeToken;
      if (!o.json) process.stderr.write(`node token valid for ${res.ttl} s; renew it before then\n`);
      out(o, res, res.nodeToken);
    });
  connected(node.command('renew').description('Renew a group or node token; prints its new TTL'), 'the token to renew')
    .action(async (o: Conn) => {
      const res = (await call(o, 'POST', '/rks/v1/auth/token/renew-self')) as NodeToken;
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
