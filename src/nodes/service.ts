import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { CallbackVerifier } from '../callback/verifier';
import { BadGateway, Conflict, Forbidden, ServiceUnavailable } from '../errors';
import { KeyedLock } from '../concurrency';
import { isSecretName, parseName } from '../names';
import { isDenied, isRefused } from '../vault/client';
import { groupTokenName, kvPath, nodePolicyName, nodeRoleName, tokenOrigin } from '../vault/layout';
import { KvEntry, KvStore, RoleSpec, Session, TokenStore } from '../vault/stores';
import { GroupRecords, GroupSerial, storedRegInfo } from '../records/groups';
import type { NodeRecords } from '../records/nodes';
import { forgetNode } from './forget';
import type { Copies } from '../secrets/copies';
import type { Storage } from '../secrets/storage';
import { deltaOf } from '../secrets/changes';
import type { ListDelta, NodeAccess as NodeAccessAnswer, NodeToken } from '../sdk/wire';


export interface NodeOptions {
  /** Seconds a node token lives between renewals. */
  tokenPeriod: number;
  /** Most nodes a group may have admitted at once. */
  maxNodesPerGroup: number;
}

/** What a node may read, for its edge's revalidation. */
export interface NodeAccess extends NodeAccessAnswer {
  /** Names this list (the group and its version), for `If-None-Match`. */
  etag: string;
}

/**
 * A version of a group's list as one rks instance learnt it: data only, never a means to read
 * more (a token): whoever asks next is served by what it holds, or reads with its own token.
 */
interface Listing {
  etag: string;
  /** The group's serial it is named by (absent for a group not moved to copies yet). */
  serial?: KvEntry<GroupSerial>;
  /** Its names, once a node that did not hold them asked (a read that failed is forgotten). */
  names?: Promise<string[]>;
}

interface GroupList {
  at: number;
  version: Promise<Listing>;
}

const LIST_CACHE_MS = 1000;

/** A node's record is refreshed on renewal at most this often (per rks instance). */
const SEEN_EVERY_MS = 3600_000;

/**
 * Node registration. The caller proves its group with its group token; rks (with its own
 * session) reads the group's callback settings, asks the group manager if one is set, and
 * admits the node: a record and a token role per node, at most `maxNodesPerGroup` of them a
 * group, and at most one live token a node (registering again revokes the previous one). The
 * node token is created with the caller's group token: a child of it, so revoking the group
 * token revokes the node. So a group token, however often it registers, cannot grow Vault
 * beyond a bound the operator chose.
 */
/** Names a version of a group's list: an ETag tells nothing of the group to those who hold it. */
const listTag = (g: string, ...parts: unknown[]) => createHash('sha256').update(JSON.stringify([g, ...parts])).digest('base64url').slice(0, 22);

export class NodeService {
  private readonly admitting = new KeyedLock();
  private readonly seen = new Map<string, number>();
  private readonly renewals = new Map<string, number>();
  private readonly lists = new Map<string, GroupList>();

  private readonly kv: KvStore;
  private readonly copies: Pick<Copies, 'listed'>;
  private readonly groups: GroupRecords;
  private readonly nodes: NodeRecords;

  constructor(
    storage: Storage,
    private readonly tokens: TokenStore,
    private readonly session: Session,
    private readonly verifier: Pick<CallbackVerifier, 'verify'>,
    private readonly options: NodeOptions,
    private readonly limitRefusals?: Counter,
    private readonly logger?: Logger,
  ) {
    ({ kv: this.kv, copies: this.copies, groups: this.groups, nodes: this.nodes } = storage);
  }

  async register(groupToken: string, nodeId: string): Promise<NodeToken> {
    const n = parseName('node id', nodeId);
    const self = await this.tokens.lookupSelf(groupToken);
    const origin = tokenOrigin(self.path);
    if (!origin || origin.nodeId !== undefined || !self.policies.includes(groupTokenName(origin.group))) throw new Forbidden('permission denied: not a group token');
    const g = origin.group;

    const config = await this.session.run((t) => this.groups.config(t, g));
    if (!config) throw new Forbidden('permission denied: the group no longer exists');
    if (await this.revoked(g, n)) throw refusedRevoked(g, n);
    let info;
    try {
      info = storedRegInfo(config.data);
    } catch (err) {
      throw new BadGateway(`the group's callback settings are not usable (${(err as Error).message}): an administrator must set them again (PUT /rks/v1/group/${g})`);
    }
    if (info.callbackURL) await this.verifier.verify(info, n);

    await this.session.run((t) => this.admit(g, n, t));
    const issued = await this.tokens.createFromRole(nodeRoleName(g, n), groupToken, { groupname: g, nodeid: n }).catch(async (err) => {
      // The role went away since its admission: a revocation (or a pruning) raced this registration.
      if (!isRefused(err)) throw err;
      if (await this.revoked(g, n)) throw refusedRevoked(g, n);
      throw new ServiceUnavailable(`node '${n}' was removed while it registered: register again`, 1);
    });
    // A revocation that ran while this registration was on its way (the callback, the admission)
    // writes its record before it revokes: either the record is seen now, or it was written after
    // this token existed and the revocation's own sweep revokes it. Seen, or not known because
    // Vault failed: the token is not handed out, and the node is forgotten again.
    let revoked: boolean;
    try {
      revoked = await this.revoked(g, n);
    } catch (err) {
      await this.forgetUnsure(g, n);
      throw err;
    }
    if (revoked) {
      await this.forgetUnsure(g, n);
      throw refusedRevoked(g, n);
    }
    return { nodeToken: issued.token, ttl: issued.ttl };
  }

  /**
   * What the calling node may read now: edges ask every few seconds and drop the keys they may
   * no longer serve, so a revocation, a rotation or a dissociation reaches them within one
   * interval, not one TTL. One token lookup per call; the group's version is read at most once
   * a second per group and rks instance, however many nodes ask, and its names are listed only
   * for an edge that does not hold them yet (`holding`: its `If-None-Match`).
   */
  async access(nodeToken: string, holding?: string, delta = false): Promise<NodeAccess> {
    const self = await this.tokens.lookupSelf(nodeToken);
    // Who it is, from the role Vault made it with: its metadata is whatever its maker set.
    const origin = tokenOrigin(self.path);
    if (!origin?.nodeId || !self.policies.includes(nodePolicyName(origin.group))) throw new Forbidden('permission denied: not a node token');
    const { group: g, nodeId: n } = origin;
    let cached = this.lists.get(g);
    if (!cached || cached.at < Date.now() - LIST_CACHE_MS) {
      const previous = cached;
      const version = this.version(g, nodeToken).then(async (v) => {
        const before = await previous?.version.catch(() => undefined);
        // The same list as a second ago: its names, once listed, are not listed again.
        return before?.etag === v.etag ? before : v;
      });
      cached = { at: Date.now(), version };
      if (this.lists.size >= 10_000) this.lists.clear();
      this.lists.set(g, cached);
      version.catch(() => this.lists.get(g) === cached && this.lists.delete(g));
    }
    // Shared with the other nodes of the group that asked this second. A read refused to the node
    // that started it (revoked, or registered again, since) is made again with this node's token.
    const listing = await mine(cached.version, () => this.version(g, nodeToken));
    if (holding === listing.etag) return { group: g, nodeId: n, ttl: self.ttl, etag: listing.etag };
    const changes = delta && holding ? this.since(g, listing, holding) : null;
    if (changes) return { group: g, nodeId: n, ttl: self.ttl, etag: listing.etag, changes };
    if (!listing.names) {
      const names = this.names(g, nodeToken);
      listing.names = names;
      names.catch(() => listing.names === names && delete listing.names);
    }
    const names = await mine(listing.names, () => this.names(g, nodeToken));
    // Asked what changed and too far behind: keys it holds may have been replaced meanwhile.
    return { group: g, nodeId: n, secrets: [...names], ttl: self.ttl, etag: listing.etag, ...(delta && holding ? { stale: true as const } : {}) };
  }

  /**
   * The group's list, named by its serial's version, read with the node's own token (its policy
   * grants the serial and the listing of its copies). A group not yet moved to layout 4 has
   * neither: its one list, read by rks, names itself by its hash.
   */
  private async version(g: string, nodeToken: string): Promise<Listing> {
    const tag = (...parts: unknown[]) => `"${listTag(g, ...parts)}"`;
    let denied = false;
    const serial = await this.kv.read<GroupSerial>(kvPath.groupSerial(g), nodeToken).catch((err) => {
      if (!isDenied(err)) throw err;
      denied = true; // a node policy from before layout 4, or a token revoked since its lookup
      return null;
    });
    if (serial) return { etag: `"${listTag(g, serial.data.incarnation, serial.version)}.${serial.version}"`, serial };
    // A group not moved yet (or half-way: a serial is written last) still has its one list.
    const list = await this.session.run((t) => this.kv.read<{ secrets: string[] }>(kvPath.groupSecrets(g), t));
    if (!list) throw new Forbidden(denied ? 'permission denied' : 'permission denied: the group no longer exists');
    const secrets = (list.data.secrets ?? []).filter(isSecretName).sort();
    return { etag: tag(secrets), names: Promise.resolve(secrets) };
  }

  /**
   * What changed from the list an edge holds (its ETag names the version) to `listing`; null
   * when the serial's log cannot say (too far behind, another incarnation of the group, an ETag
   * rks did not make): the whole list then.
   */
  private since(g: string, listing: Listing, holding: string): ListDelta | null {
    const held = /^"([A-Za-z0-9_-]{22})(?:\.(\d{1,15}))?"$/.exec(holding);
    const serial = listing.serial;
    if (!held || !serial) return null;
    // An ETag of an rks before deltas names no version: the current one, or one rks cannot tell.
    const from = held[2] === undefined ? serial.version : Number(held[2]);
    if (held[1] !== listTag(g, serial.data.incarnation, from)) return null;
    return deltaOf(serial.data, from, serial.version);
  }

  /** The names of a group's copies (layout 4; managed ones apart since 6), listed with the node's own token. */
  private async names(g: string, nodeToken: string): Promise<string[]> {
    return this.copies.listed(nodeToken, g);
  }

  /** Renews the caller's own token (group or node) and answers its new TTL. */
  async renewSelf(token: string): Promise<NodeToken> {
    const renewed = await this.tokens.renewSelf(token);
    if (renewed.meta.nodeid && this.due(renewed.accessor)) {
      // Whose record to refresh is told by the token's role, not its metadata (at most hourly).
      const origin = tokenOrigin((await this.tokens.lookupSelf(token).catch(() => undefined))?.path);
      if (origin?.nodeId) this.markSeen(origin.group, origin.nodeId);
    }
    return { nodeToken: token, ttl: renewed.ttl };
  }

  private async admit(g: string, n: string, t: string): Promise<void> {
    const role = nodeRoleName(g, n);
    const spec: RoleSpec = {
      allowed_policies: [nodePolicyName(g)],
      orphan: false,
      token_period: this.options.tokenPeriod,
      renewable: true,
      token_no_default_policy: true,
      token_type: 'service',
    };
    const known = await this.nodes.read(t, g, n);
    if (known) {
      // The role is written again too: a revocation racing this registration may have removed it.
      await this.tokens.writeRole(role, spec, t);
      await this.tokens.revokeRoleTokens(role, t);
      await this.nodes.admit(t, g, n, known.data.registeredAt);
      return;
    }
    // New nodes of a group are admitted one at a time here, so the count holds in this process.
    await this.admitting.run(g, async () => {
      const count = (await this.nodes.ids(t, g)).length;
      if (count >= this.options.maxNodesPerGroup) {
        this.limitRefusals?.inc();
        throw new Conflict(
          `group '${g}' has reached its limit of ${this.options.maxNodesPerGroup} nodes (--max-nodes-per-group): revoke nodes that are gone, or raise the limit`,
          'node_limit_reached',
        );
      }
      await this.tokens.writeRole(role, spec, t);
      await this.tokens.revokeRoleTokens(role, t);
      await this.nodes.admit(t, g, n);
    });
  }

  /** Refreshes a renewing node's record now and then, so pruning leaves it alone. */
  /**
   * Whether an administrator revoked the node. An rks identity that cannot read revocations
   * (made by an rks from before they were kept: 403 until init runs again) refuses every
   * registration rather than let a revoked node back in, and says what to do.
   */
  private async revoked(g: string, n: string): Promise<boolean> {
    try {
      return Boolean(await this.session.run((t) => this.groups.revocation(t, g, n)));
    } catch (err) {
      if (!isDenied(err)) throw err;
      const why = "rks's identity in Vault cannot read revoked nodes: an administrator must run init again (POST /rks/v1/init with the root token)";
      if (!this.warnedRevocations) this.logger?.warn(`${why}; registrations are refused until then`);
      this.warnedRevocations = true;
      throw new ServiceUnavailable(why, 60);
    }
  }

  private warnedRevocations = false;

  /** Forgets a node whose fresh token is not handed out; a failure is logged, not thrown over the first. */
  private async forgetUnsure(g: string, n: string): Promise<void> {
    await this.session
      .run((t) => forgetNode(this.nodes, this.tokens, g, n, t))
      .catch((err: Error) => this.logger?.error({ group: g, node: n, err: err.message }, 'a token made for a node that was not admitted in the end could not be revoked: revoke the node again'));
  }

  /** Whether a token's renewal should refresh its node's record (at most hourly per token). */
  private due(accessor: string): boolean {
    const now = Date.now();
    if (now - (this.renewals.get(accessor) ?? 0) < SEEN_EVERY_MS) return false;
    if (this.renewals.size >= 100_000) this.renewals.clear();
    this.renewals.set(accessor, now);
    return true;
  }

  private markSeen(g: string, n: string): void {
    const key = `${g}/${n}`;
    const now = Date.now();
    if (now - (this.seen.get(key) ?? 0) < SEEN_EVERY_MS) return;
    if (this.seen.size >= 100_000) this.seen.clear();
    this.seen.set(key, now);
    void this.session
      .run((t) => this.nodes.seen(t, g, n, new Date(now)))
      .catch((err: Error) => this.logger?.debug({ group: g, node: n, err: err.message }, 'could not refresh a node record'));
  }
}

/**
 * What another caller's read found, or, when Vault refused that caller (its token died
 * meanwhile), the same read made with this caller's own token: one caller's token never
 * decides another's answer.
 */
function mine<T>(shared: Promise<T>, own: () => Promise<T>): Promise<T> {
  return shared.catch((err) => {
    if (!(err instanceof Forbidden || isDenied(err))) throw err;
    return own();
  });
}

function refusedRevoked(g: string, n: string): Forbidden {
  return new Forbidden(`node '${n}' was revoked by an administrator: it may register again once allowed back (rks node allow ${g} ${n})`, 'node_revoked');
}
