import { randomUUID } from 'node:crypto';
import { Conflict, Locked, NotFound, ServiceUnavailable } from '../errors';
import { isSecretName, parseFqdn, parseName } from '../names';
import { groupTokenName, kvPath, nodePolicyName, nodeRolePrefix } from '../vault/layout';
import { groupTokenPolicy, nodePolicy } from '../vault/policies';
import { CasExhausted, KvEntry, KvStore, PolicyStore, RoleSpec, Session, TokenStore } from '../vault/stores';
import { isDenied } from '../vault/client';
import { forgetNode } from '../nodes/forget';
import type { Catalog } from '../secrets/catalog';
import { ChangeLog } from '../secrets/changes';
import type { Copies, CopySource } from '../secrets/copies';
import { ExpiryOf } from '../secrets/service';
import type { Storage } from '../secrets/storage';
import { KeyedLock } from '../concurrency';
import { ChangeOp, GroupRecords, GroupRegInfo, GroupSecretList, GroupSerial, GroupTokenAccessor, GroupTokenRecord, checkRegInfo, groupNotFound } from '../records/groups';
import type { NodeRecords } from '../records/nodes';
import { SecretRecords, secretNotFound } from '../records/secrets';




/** Group tokens are periodic: renewed (by rks, in the background) they never expire. */
export const GROUP_TOKEN_PERIOD = 31 * 24 * 3600;

/**
 * Groups, their tokens and their secret lists. Every call runs with the caller's (admin)
 * token; edits of one group are serialised in this process and checked-and-set in Vault.
 * The group's two policies and its token's role are the exception: they say what a token of
 * the group may do in Vault, so no caller writes them. `writer` (rks's own identity; the root
 * token in init and the migration) writes what rks builds from the validated name, and only
 * after a write with the caller's own token showed it may change the group.
 */
export class GroupService {
  private readonly lock = new KeyedLock();
  private readonly expiryOf = new ExpiryOf();
  private readonly copies: Copies;
  private readonly changes: ChangeLog;
  private readonly catalog: Catalog;

  private readonly kv: KvStore;
  private readonly records: SecretRecords;
  private readonly groups: GroupRecords;
  private readonly nodes: NodeRecords;

  constructor(
    storage: Storage,
    private readonly policies: PolicyStore,
    private readonly tokens: TokenStore,
    private readonly writer: Session,
  ) {
    ({ kv: this.kv, records: this.records, copies: this.copies, catalog: this.catalog, groups: this.groups, nodes: this.nodes, changes: this.changes } = storage);
  }

  async create(token: string, name: string, info: GroupRegInfo): Promise<string> {
    const g = parseName('group name', name);
    checkRegInfo(info);
    return this.lock.run(g, async () => {
      // Claims the name: a second create, concurrent or not, stops here.
      await this.groups.claim(token, g, info);
      try {
        await this.kv.write<GroupSerial>(kvPath.groupSerial(g), { incarnation: randomUUID() }, token);
        await this.putPolicy(nodePolicyName(g), nodePolicy(g));
        return await this.issueGroupToken(token, g);
      } catch (err) {
        await this.dropPolicies(g).catch(() => undefined);
        await this.purge(token, g).catch(() => undefined);
        throw err;
      }
    });
  }

  async get(token: string, name: string): Promise<GroupRegInfo> {
    const g = parseName('group name', name);
    const entry = await this.groups.config(token, g);
    if (!entry) throw groupNotFound(g);
    return entry.data as GroupRegInfo;
  }

  async update(token: string, name: string, info: GroupRegInfo): Promise<GroupRegInfo> {
    const g = parseName('group name', name);
    checkRegInfo(info);
    return this.lock.run(g, async () => {
      await this.casOrLocked(() => this.groups.replaceConfig(token, g, info));
      return info;
    });
  }

  /** Removes everything rks made for the group. Safe to run again after a crash half-way. */
  async delete(token: string, name: string): Promise<void> {
    const g = parseName('group name', name);
    await this.lock.run(g, async () => {
      await this.mustExist(token, g);
      // A write only an administrator may make comes first: a token that may merely read the
      // group never gets as far as rks's identity dropping its policies.
      await this.tokens.revokeRoleTokens(groupTokenName(g), token);
      // Then the policies: an rks identity that may not yet drop them stops the deletion here.
      await this.dropPolicies(g);
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
   * Takes over a group whose config exists without rks's own objects (a classic RKS group):
   * these secrets as copies, its list gone, a group token of rks's own.
   */
  async adopt(token: string, name: string, secrets: string[]): Promise<string> {
    const g = parseName('group name', name);
    return this.lock.run(g, async () => {
      await this.mustExist(token, g);
      await this.moveToCurrentLayout(token, g, secrets);
      await this.tokens.revokeRoleTokens(groupTokenName(g), token);
      return this.issueGroupToken(token, g);
    });
  }

  /**
   * Moves a group of an older layout (one list and a node policy naming each secret) to copies
   * and a node policy of constant size, without a moment in which a node is refused a secret
   * it may read: copies first (the old policy still grants the secrets), then the policy, then
   * the list goes. Answers the entries of the list that could not be kept (no such secret).
   */
  async upgrade(token: string, name: string): Promise<string[]> {
    const g = parseName('group name', name);
    return this.lock.run(g, async () => {
      await this.mustExist(token, g);
      return this.moveToCurrentLayout(token, g);
    });
  }

  private async moveToCurrentLayout(token: string, g: string, secrets?: string[]): Promise<string[]> {
    // Moved already (a move that stopped before the list went): its copies are the truth since.
    const moved = await this.kv.exists(kvPath.groupSerial(g), token);
    const list = moved ? [] : (secrets ?? (await this.kv.read<GroupSecretList>(kvPath.groupSecrets(g), token))?.data.secrets ?? []);
    const dropped: string[] = [];
    for (const fqdn of list) {
      if (!isSecretName(fqdn) || !(await this.records.exists(token, fqdn))) {
        dropped.push(fqdn);
        continue;
      }
      await this.casOrLocked(() => this.copies.index(token, fqdn, g, true));
      await Promise.all([this.copies.sync(token, g, fqdn, true), this.catalogued(token, fqdn)]);
    }
    await this.putPolicy(nodePolicyName(g), nodePolicy(g));
    // The serial marks the group as moved (associations allowed, no more upgrade): after the policy.
    if (!moved) await this.kv.write<GroupSerial>(kvPath.groupSerial(g), { incarnation: randomUUID() }, token);
    await this.kv.destroy(kvPath.groupSecrets(g), token);
    return dropped;
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
    return this.copies.names(token, g);
  }

  /**
   * Copies the secret into the group's folder, which the group's node policy grants. The index
   * entry comes first and goes last, so a secret someone can read is never deleted.
   */
  async associate(token: string, name: string, secret: string): Promise<void> {
    const g = parseName('group name', name);
    const fqdn = parseFqdn(secret);
    // One secret at a time per group: associations of different secrets run side by side.
    await this.lock.run(`${g}/${fqdn}`, async () => {
      // Everything the association starts from, read at once: each write below checks what it read.
      const [config, serial, stored, copy, index] = await Promise.all([
        this.groups.exists(token, g),
        this.kv.exists(kvPath.groupSerial(g), token),
        this.copies.source(token, fqdn),
        this.copies.exists(token, g, fqdn),
        this.copies.indexEntry(token, fqdn),
      ]);
      mustBeCurrent(g, config, serial);
      if (!stored) throw secretNotFound(fqdn);
      if (!stored.entry) throw new NotFound(`secret '${fqdn}' has no certificate yet: associate it once rks obtained its first`);
      // Its copy goes where node policies before layout 6 grant nothing: not before init moved them.
      if (stored.managed && ((await this.kv.read<{ layout?: number }>(kvPath.config, token))?.data.layout ?? 0) < 6) {
        throw new Conflict(`managed secrets are in an older rks's layout: run init again (rks init, or POST /rks/v1/init with the root token), then retry`, 'layout_outdated');
      }
      const expired = this.expiryOf.expired(stored.entry.data);
      if (expired) throw new Conflict(`the certificate of '${fqdn}' expired at ${expired}: push a new one first`, 'certificate_expired');
      await this.casOrLocked(() => this.copies.index(token, fqdn, g, true, index));
      // The inventory learns of it beside the copy, off the nodes' path.
      const catalogued = this.catalogued(token, fqdn);
      try {
        await this.copyIn(token, g, fqdn, stored, copy);
      } catch (err) {
        // Failed half-way (not a duplicate): no index entry may name the group without a copy,
        // or the secret could never be deleted once the group is.
        if (!(err instanceof Conflict)) {
          await this.copies
            .exists(token, g, fqdn)
            .then((copied) => (copied ? undefined : this.copies.index(token, fqdn, g, false)))
            .catch(() => undefined);
        }
        // Undone, or overtaken: told again once the index says what stands.
        await catalogued;
        await this.catalogued(token, fqdn);
        throw err;
      }
      await catalogued;
    });
  }

  /**
   * The association's copy, made after its index entry from the secret as read, then checked
   * (with the group's serial read in the same breath), and the nodes' list named anew.
   */
  private async copyIn(token: string, g: string, fqdn: string, secret: CopySource, copied: boolean): Promise<void> {
    if (copied) {
      // A retry after a failure half-way: the copy brought up to date, the nodes' list named anew.
      await this.copies.sync(token, g, fqdn, false);
      await this.changed(token, g, fqdn, 'a');
      throw new Conflict(`secret '${fqdn}' is already associated with group '${g}'`, 'already_associated');
    }
    for (let round = 1; ; round++) {
      if (round === 1) await this.copies.put(token, g, fqdn, secret, 0);
      else await this.copies.sync(token, g, fqdn, true);
      // A dissociation, the secret's deletion or the group's by another instance may have come in between.
      const [present, indexed, exists, serial] = await Promise.all([
        this.copies.sync(token, g, fqdn, false),
        this.copies.groupsOf(token, fqdn).then((gs) => gs.includes(g)),
        this.groups.exists(token, g),
        this.kv.read<GroupSerial>(kvPath.groupSerial(g), token),
      ]);
      if (!indexed || !exists) {
        await this.copies.destroy(token, g, fqdn);
        // The group's deletion listed its copies before this one was made: its index entry goes too (below).
        if (!exists) throw groupNotFound(g);
        throw new Locked(`secret '${fqdn}' was dissociated from group '${g}' meanwhile; retry`);
      }
      // Read after the copy was made: the serial written over it names a list that holds the copy.
      if (present) return this.changed(token, g, fqdn, 'a', serial);
      // A dissociation that ended meanwhile removed its stray copy after this association named
      // the group again: this association came last, and its copy is made again.
      if (round === 3) throw new Locked(`the copy of '${fqdn}' in group '${g}' keeps disappearing; retry`);
    }
  }

  /** The copy goes first (nodes are refused at once), then the index entry. */
  async dissociate(token: string, name: string, secret: string): Promise<void> {
    const g = parseName('group name', name);
    const fqdn = parseFqdn(secret);
    await this.lock.run(`${g}/${fqdn}`, async () => {
      const [config, serial, copied, index] = await Promise.all([
        this.groups.exists(token, g),
        this.kv.exists(kvPath.groupSerial(g), token),
        this.copies.exists(token, g, fqdn),
        this.copies.indexEntry(token, fqdn),
      ]);
      mustBeCurrent(g, config, serial);
      const indexed = (index?.data.groups ?? []).includes(g);
      if (!copied && !indexed) throw new NotFound(`secret '${fqdn}' is not associated with group '${g}'`);
      if (copied) await this.copies.destroy(token, g, fqdn);
      const named = this.changed(token, g, fqdn, 'r');
      try {
        await this.casOrLocked(() => this.copies.index(token, fqdn, g, false, index));
        // An association by another instance may have copied it again in between: gone too.
        await Promise.all([this.copies.destroy(token, g, fqdn), this.catalogued(token, fqdn)]);
      } finally {
        await named;
      }
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
    await this.lock.run(g, async () => {
      await this.mustExist(token, g);
      // Refused first, so the node cannot register again between the two steps (a registration
      // already on its way looks again once its token exists: see NodeService.register).
      await this.groups.revoke(token, g, n);
      await forgetNode(this.nodes, this.tokens, g, n, token);
      // A deletion of the group elsewhere may have swept its revocations before this one was
      // written: a record found without its group is removed (one written in the last instant of
      // such a deletion may remain; it keeps that node out of a group made again with the name).
      if (!(await this.groups.exists(token, g))) await this.groups.allowBack(token, g, n);
    });
  }

  /** Lets a revoked node register again. */
  async allowNode(token: string, name: string, nodeId: string): Promise<void> {
    const g = parseName('group name', name);
    const n = parseName('node id', nodeId);
    await this.lock.run(g, async () => {
      await this.mustExist(token, g);
      if (!(await this.groups.isRevoked(token, g, n))) throw new NotFound(`node '${n}' of group '${g}' is not revoked`);
      await this.groups.allowBack(token, g, n);
    });
  }

  /** Callers have written with their own token first (the group's config, its tokens revoked). */
  private async issueGroupToken(token: string, g: string): Promise<string> {
    const name = groupTokenName(g);
    await this.putPolicy(name, groupTokenPolicy(g));
    const role: RoleSpec = { allowed_policies: [name], orphan: true, token_period: GROUP_TOKEN_PERIOD, renewable: true, token_no_default_policy: true, token_type: 'service' };
    await this.privileged((t) => this.tokens.writeRole(name, role, t));
    const issued = await this.tokens.createFromRole(name, token, { groupname: g });
    await this.kv.write<GroupTokenRecord>(kvPath.groupToken(g), { groupToken: issued.token, accessor: issued.accessor }, token);
    await this.kv.write<GroupTokenAccessor>(kvPath.groupTokenAccessor(g), { accessor: issued.accessor }, token);
    return issued.token;
  }

  /**
   * Everything but the policies (the writer's: dropPolicies). Every step is idempotent and the
   * config, which marks the group as existing, goes last.
   */
  private async purge(token: string, g: string): Promise<void> {
    await this.tokens.revokeRoleTokens(groupTokenName(g), token);
    for (const n of await this.nodes.ids(token, g)) await this.nodes.destroy(token, g, n);
    for (const n of await this.groups.revokedIds(token, g)) await this.groups.allowBack(token, g, n);
    const prefix = nodeRolePrefix(g);
    for (const role of (await this.tokens.listRoles(token)).filter((r) => r.startsWith(prefix))) {
      await this.tokens.revokeRoleTokens(role, token);
      await this.tokens.deleteRole(role, token);
    }
    for (const fqdn of await this.copies.names(token, g)) {
      await this.copies.destroy(token, g, fqdn);
      await this.casOrLocked(() => this.copies.index(token, fqdn, g, false));
      await this.catalogued(token, fqdn);
    }
    await this.tokens.deleteRole(groupTokenName(g), token);
    await this.kv.destroy(kvPath.groupToken(g), token);
    await this.kv.destroy(kvPath.groupTokenAccessor(g), token);
    await this.kv.destroy(kvPath.groupSecrets(g), token);
    await this.kv.destroy(kvPath.groupSerial(g), token);
    await this.groups.destroyConfig(token, g);
    // An association by another instance may have copied a secret in since the listing above.
    for (const fqdn of await this.copies.listed(token, g)) {
      await this.copies.destroy(token, g, fqdn);
      await this.casOrLocked(() => this.copies.index(token, fqdn, g, false));
      await this.catalogued(token, fqdn);
    }
  }

  /**
   * Tells the inventory's catalog of a change of the secret's groups. Tried twice, then given up
   * on: the association stands, and the inventory shows the groups before until the next change.
   */
  private async catalogued(token: string, fqdn: string): Promise<void> {
    await this.catalog.refresh(token, fqdn).catch(() => this.catalog.refresh(token, fqdn)).catch(() => undefined);
  }

  /**
   * Names the group's list anew (a new version of its serial, which records the change): edges
   * holding the old one learn what changed. `seen`: the serial as read after the change.
   */
  private async changed(token: string, g: string, fqdn: string, op: ChangeOp, seen?: KvEntry<GroupSerial> | null): Promise<void> {
    await this.changes.record(token, g, [[fqdn, op]], seen);
  }

  /** The group's two policies gone: its tokens (revoked next) can do nothing meanwhile. */
  private async dropPolicies(g: string): Promise<void> {
    await this.privileged((t) => this.policies.deletePolicy(groupTokenName(g), t));
    await this.privileged((t) => this.policies.deletePolicy(nodePolicyName(g), t));
  }

  private putPolicy(name: string, text: string): Promise<void> {
    return this.privileged((t) => this.policies.putPolicy(name, text, t));
  }

  /** A write by `writer`; refused by Vault, an rks whose identity predates the grant. */
  private async privileged(write: (token: string) => Promise<unknown>): Promise<void> {
    try {
      await this.writer.run(write);
    } catch (err) {
      if (!isDenied(err)) throw err;
      throw new ServiceUnavailable("rks's identity in Vault may not write group policies and roles yet: an administrator must run init again (rks init, or POST /rks/v1/init with the root token)", 1);
    }
  }

  private async casOrLocked<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof CasExhausted) throw new Locked('too many concurrent changes to this group; retry');
      throw err;
    }
  }

  private mustExist(token: string, g: string): Promise<void> {
    return this.groups.mustExist(token, g);
  }
}

/** Exists (its config), in the current layout (its serial): an older one is moved by init, never by an association. */
function mustBeCurrent(g: string, config: boolean, serial: boolean): void {
  if (!config) throw groupNotFound(g);
  if (!serial) {
    throw new Conflict(`group '${g}' is still in an older rks's layout: run init again (rks init, or POST /rks/v1/init with the root token) to move it, then retry`, 'layout_outdated');
  }
}

