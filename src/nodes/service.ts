import type { CallbackVerifier } from '../callback/verifier';
import { Forbidden } from '../errors';
import type { GroupRegInfo } from '../groups/service';
import { parseName } from '../names';
import { Kv } from '../vault/kv';
import { groupTokenName, kvPath, nodePolicyName, nodeRoleName } from '../vault/layout';
import { ServiceSession } from '../vault/session';
import { Tokens } from '../vault/tokens';

export interface NodeToken {
  nodeToken: string;
  ttl: number;
}

/**
 * Node registration. The caller proves its group with its group token; rks (with its own
 * session) reads the group's callback settings, asks the group manager if one is set, makes
 * the node's role, and the node token is then created with the caller's group token: a child
 * of it, so revoking the group token revokes the node.
 */
export class NodeService {
  constructor(
    private readonly kv: Kv,
    private readonly tokens: Tokens,
    private readonly session: ServiceSession,
    private readonly verifier: CallbackVerifier,
    private readonly nodeTokenPeriod: number,
  ) {}

  async register(groupToken: string, nodeId: string): Promise<NodeToken> {
    const n = parseName('node id', nodeId);
    const self = await this.tokens.lookupSelf(groupToken);
    const g = self.meta.groupname;
    if (!g || !self.policies.includes(groupTokenName(g))) throw new Forbidden('permission denied: not a group token');

    const config = await this.session.run((t) => this.kv.read<GroupRegInfo>(kvPath.groupConfig(g), t));
    if (!config) throw new Forbidden('permission denied: the group no longer exists');
    if (config.data.callbackURL) await this.verifier.verify(config.data, n);

    const role = nodeRoleName(g, n);
    await this.session.run((t) =>
      this.tokens.writeRole(
        role,
        {
          allowed_policies: [nodePolicyName(g)],
          orphan: false,
          token_period: this.nodeTokenPeriod,
          renewable: true,
          token_no_default_policy: true,
        },
        t,
      ),
    );
    const issued = await this.tokens.createFromRole(role, groupToken, { groupname: g, nodeid: n });
    return { nodeToken: issued.token, ttl: issued.ttl };
  }

  /** Renews the caller's own token (group or node) and answers its new TTL. */
  async renewSelf(token: string): Promise<NodeToken> {
    const renewed = await this.tokens.renewSelf(token);
    return { nodeToken: token, ttl: renewed.ttl };
  }
}
