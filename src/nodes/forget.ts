import type { NodeRecords } from '../records/nodes';
import { nodeRoleName } from '../vault/layout';
import type { TokenStore } from '../vault/stores';

/**
 * Removes a node: its record first (so a crash half-way leaves at worst a role that the next
 * registration or the group's deletion cleans up, never a record without a role), then its role,
 * so that nothing more can be made from it, then every token made through it. Safe to repeat;
 * fine for an unknown node.
 */
export async function forgetNode(nodes: NodeRecords, tokens: TokenStore, g: string, n: string, token: string): Promise<void> {
  await nodes.destroy(token, g, n);
  await tokens.deleteRole(nodeRoleName(g, n), token);
  await tokens.revokeRoleTokens(nodeRoleName(g, n), token);
}
