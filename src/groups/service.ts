import { Conflict, Locked, NotFound } from '../errors';
import { isName, parseFqdn, parseName } from '../names';
import { CasExhausted, CasMismatch, NO_CHANGE } from '../vault/kv';
import {
  groupTokenName,
  groupTokenPolicy,
  kvPath,
  nodePolicy,
  nodePolicyName,
  nodeRolePrefix,
} from '../vault/layout';
import type { KvStore, PolicyStore, TokenStore } from '../vault/stores';
import { forgetNode } from '../nodes/forget';
import { ExpiryOf, SecretData } from '../secrets/service';
import { KeyedLock } from './keyed-lock';
import { GroupRegInfo, checkRegInfo } from './records';

export type { GroupRegInfo } from './records';

/** A node an administrator revoked, at `rks/data/groups/<g>/revoked/<nodeId>`. */
export interface RevokedNode {
  revokedAt: string;
}

export interface GroupTokenRecord {
  groupToken: string;
  accessor: string;
}

/** Kept apart from the token, for rks's own identity, which renews group tokens by accessor. */
export interface GroupTokenAccessor {
  accessor: string;
}

interface SecretList {
  secrets: string[];
}

interface SecretGroups {
  groups: string[];
}

/** Group tokens are periodic: renewed (by rks, in the background) they never expire. */
export const GROUP_TOKEN_PERIOD = 31 * 24 * 3600;

/**
 * Groups, their tokens and their secret lists. Every call runs with the caller's (admin)
 * token; edits of one group are serialised in this process and checked-and-set in Vault.
 */
export class GroupService {
  private readonly lock = new KeyedLock();
  private readonly expiryOf = new ExpiryOf();

  constructor(
    private readonly kv: KvStore,
    private readonly policies: PolicyStore,
    private readonly tokens: TokenStore,
  ) {}

  async create(token: string, name: string, info: GroupRegInfo): Promise<string> {
    const g = parseName('group name', name);
    checkRegInfo(info);
    return this.lock.run(g, async () => {
      try {
        // Claims the name: a second create, concurrent or not, stops here.
        await this.kv.write(kvPath.groupConfig(g), info, token, 0);
      } catch (err) {
        if (err instanceof CasMismatch) throw new Conflict(`group '${g}' already exists`, 'already_exists');
        throw err;
      }
      try {
        await this.kv.write<SecretList>(kvPath.groupSecrets(g), { secrets: [] }, token);
        await this.policies.putPolicy(nodePolicyName(g), nodePolicy(g, []), token);
        return await this.issueGroupToken(token, g);
      } catch (err) {
        await this.purge(token, g).catch(() => undefined);
        throw err;
      }
    });
  }

  async get(token: string, name: string): Promise<GroupRegInfo> {
    const g = parseName('group name', name);
    const entry = await this.kv.read<GroupRegInfo>(kvPath.groupConfig(g), token);
    if (!entry) throw notFound(g);
    return entry.data;
  }

  async update(token: string, name: string, info: GroupRegInfo): Promise<GroupRegInfo> {
    const g = parseName('group name', name);
    checkRegInfo(info);
    return this.lock.run(g, async () => {
      await this.casOrLocked(() =>
        this.kv.update<GroupRegInfo>(kvPath.groupConfig(g), token, (current) => {
          if (!current) throw notFound(g);
          return info;
        }),
      );
      return info;
    });
  }

  /** Removes everything rks made for the group. Safe to run again after a crash half-way. */
  async delete(token: string, name: string): Promise<void> {
    const g = parseName('group name', name);
    await this.lock.run(g, async () => {
      await this.mustExist(token, g);
      await this.purge(token, g);
    });
  }

  async groupToken(token: string, name: string): Promise<string> {
    const g = parseName('group name', name);
    await this.mustExist(token, g);
    const record = await this.kv.read<GroupTokenRecord>(kvPath.groupToken(g), token);
    if (!record) throw new NotFound(`group '${g}' has no token; rotate it to issue one`);
    return record.data.groupToken;
  }

  /**
   * Takes over a group whose config and secret list exist without rks's own objects (a classic
   * RKS group): the node policy from its list, the reverse index of its secrets, a group token.
   */
  async adopt(token: string, name: string): Promise<string> {
    const g = parseName('group name', name);
    return this.lock.run(g, async () => {
      await this.mustExist(token, g);
      const list = (await this.kv.read<SecretList>(kvPath.groupSecrets(g), token))?.data.secrets ?? [];
      if (!(await this.kv.exists(kvPath.groupSecrets(g), token))) await this.kv.write<SecretList>(kvPath.groupSecrets(g), { secrets: [] }, token);
      for (const fqdn of list) await this.editIndex(token, fqdn, (groups) => (groups.includes(g) ? groups : [...groups, g]));
      await this.policies.putPolicy(nodePolicyName(g), nodePolicy(g, list), token);
      await this.tokens.revokeRoleTokens(groupTokenName(g), token);
      return this.issueGroupToken(token, g);
    });
  }

  /** Revokes every token of the group (and with them every node token), then issues a new one. */
  async rotateGroupToken(token: string, name: string): Promise<string> {
    const g = parseName('group name', name);
    return this.lock.run(g, async () => {
      await this.mustExist(token, g);
      await this.tokens.revokeRoleTokens(groupTokenName(g), token);
      return this.issueGroupToken(token, g);
    });
  }

  async secrets(token: string, name: string): Promise<string[]> {
    const g = parseName('group name', name);
    await this.mustExist(token, g);
    const list = await this.kv.read<SecretList>(kvPath.groupSecrets(g), token);
    return [...(list?.data.secrets ?? [])].sort();
  }

  async associate(token: string, name: string, secret: string): Promise<void> {
    const g = parseName('group name', name);
    const fqdn = parseFqdn(secret);
    await this.lock.run(g, async () => {
      await this.mustExist(token, g);
      const stored = await this.kv.read<SecretData>(kvPath.secret(fqdn), token);
      if (!stored) throw new NotFound(`secret '${fqdn}' not found`);
      const expired = this.expiryOf.expired(stored.data);
      if (expired) throw new Conflict(`the certificate of '${fqdn}' expired at ${expired}: push a new one first`, 'certificate_expired');
      // The index is a superset of the lists at every moment, so a secret in use is never deleted.
      await this.editIndex(token, fqdn, (groups) => (groups.includes(g) ? groups : [...groups, g]));
      await this.casOrLocked(() =>
        this.kv.update<SecretList>(kvPath.groupSecrets(g), token, (list) => {
          const secrets = list?.secrets ?? [];
          if (secrets.includes(fqdn)) throw new Conflict(`secret '${fqdn}' is already associated with group '${g}'`, 'already_associated');
          return { secrets: [...secrets, fqdn] };
        }),
      );
      await this.syncNodePolicy(token, g);
    });
  }

  async dissociate(token: string, name: string, secret: string): Promise<void> {
    const g = parseName('group name', name);
    const fqdn = parseFqdn(secret);
    await this.lock.run(g, async () => {
      await this.mustExist(token, g);
      let listed = true;
      await this.casOrLocked(() =>
        this.kv.update<SecretList>(kvPath.groupSecrets(g), token, (list) => {
          const secrets = list?.secrets ?? [];
          listed = secrets.includes(fqdn);
          return listed ? { secrets: secrets.filter((s) => s !== fqdn) } : NO_CHANGE;
        }),
      );
      if (listed) await this.syncNodePolicy(token, g);
      await this.editIndex(token, fqdn, (groups) => groups.filter((x) => x !== g));
      if (!listed) throw new NotFound(`secret '${fqdn}' is not associated with group '${g}'`);
    });
  }

  /**
   * Revokes a node: its tokens, its role, and its way back in. It is refused at registration
   * until an administrator allows it back (the group token it holds still works for other
   * nodes; rotate it when it leaked). Fine for a node that never registered.
   */
  async revokeNode(token: string, name: string, nodeId: string): Promise<void> {
    const g = parseName('group name', name);
    const n = parseName('node id', nodeId);
    await this.mustExist(token, g);
    // Refused first, so the node cannot register again between the two steps.
    await this.kv.write<RevokedNode>(kvPath.groupRevokedNode(g, n), { revokedAt: new Date().toISOString() }, token);
    await forgetNode(this.kv, this.tokens, g, n, token);
  }

  /** Lets a revoked node register again. */
  async allowNode(token: string, name: string, nodeId: string): Promise<void> {
    const g = parseName('group name', name);
    const n = parseName('node id', nodeId);
    await this.mustExist(token, g);
    if (!(await this.kv.exists(kvPath.groupRevokedNode(g, n), token))) throw new NotFound(`node '${n}' of group '${g}' is not revoked`);
    await this.kv.destroy(kvPath.groupRevokedNode(g, n), token);
  }

  private async issueGroupToken(token: string, g: string): Promise<string> {
    const name = groupTokenName(g);
    await this.policies.putPolicy(name, groupTokenPolicy(g), token);
    await this.tokens.writeRole(
      name,
      {
        allowed_policies: [name],
        orphan: true,
        token_period: GROUP_TOKEN_PERIOD,
        renewable: true,
        token_no_default_policy: true,
        token_type: 'service',
      },
      token,
    );
    const issued = await this.tokens.createFromRole(name, token, { groupname: g });
    await this.kv.write<GroupTokenRecord>(kvPath.groupToken(g), { groupToken: issued.token, accessor: issued.accessor }, token);
    await this.kv.write<GroupTokenAccessor>(kvPath.groupTokenAccessor(g), { accessor: issued.accessor }, token);
    return issued.token;
  }

  /** Every step is idempotent and the config, which marks the group as existing, goes last. */
  private async purge(token: string, g: string): Promise<void> {
    await this.tokens.revokeRoleTokens(groupTokenName(g), token);
    for (const n of (await this.kv.list(kvPath.groupNodes(g), token)).filter(isName)) await this.kv.destroy(kvPath.groupNode(g, n), token);
    for (const n of (await this.kv.list(kvPath.groupRevokedNodes(g), token)).filter(isName)) await this.kv.destroy(kvPath.groupRevokedNode(g, n), token);
    const prefix = nodeRolePrefix(g);
    for (const role of (await this.tokens.listRoles(token)).filter((r) => r.startsWith(prefix))) {
      await this.tokens.revokeRoleTokens(role, token);
      await this.tokens.deleteRole(role, token);
    }
    const list = await this.kv.read<SecretList>(kvPath.groupSecrets(g), token);
    for (const fqdn of list?.data.secrets ?? []) {
      await this.editIndex(token, fqdn, (groups) => groups.filter((x) => x !== g));
    }
    await this.tokens.deleteRole(groupTokenName(g), token);
    await this.policies.deletePolicy(groupTokenName(g), token);
    await this.policies.deletePolicy(nodePolicyName(g), token);
    await this.kv.destroy(kvPath.groupToken(g), token);
    await this.kv.destroy(kvPath.groupTokenAccessor(g), token);
    await this.kv.destroy(kvPath.groupSecrets(g), token);
    await this.kv.destroy(kvPath.groupConfig(g), token);
  }

  /**
   * Rewrites the node policy from the secret list until the list did not change meanwhile,
   * so concurrent writers (other rks instances) converge on the latest list.
   */
  private async syncNodePolicy(token: string, g: string): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const before = await this.kv.read<SecretList>(kvPath.groupSecrets(g), token);
      await this.policies.putPolicy(nodePolicyName(g), nodePolicy(g, before?.data.secrets ?? []), token);
      const after = await this.kv.read<SecretList>(kvPath.groupSecrets(g), token);
      if ((after?.version ?? 0) === (before?.version ?? 0)) return;
    }
    throw new Locked(`group '${g}' is changing too fast; retry`);
  }

  private async editIndex(token: string, fqdn: string, fn: (groups: string[]) => string[]): Promise<void> {
    await this.casOrLocked(() =>
      this.kv.update<SecretGroups>(kvPath.secretGroups(fqdn), token, (index) => ({ groups: fn(index?.groups ?? []) })),
    );
  }

  private async casOrLocked<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof CasExhausted) throw new Locked('too many concurrent changes to this group; retry');
      throw err;
    }
  }

  private async mustExist(token: string, g: string): Promise<void> {
    if (!(await this.kv.exists(kvPath.groupConfig(g), token))) throw notFound(g);
  }
}

function notFound(g: string): NotFound {
  return new NotFound(`group '${g}' not found`);
}
