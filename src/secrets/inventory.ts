import { NotFound } from '../errors';
import type { GroupRegInfo } from '../groups/records';
import type { NodeRecord } from '../nodes/service';
import { RKS_CA } from '../acme/issuers';
import { mapLimited } from '../concurrency';
import { isName, isSecretName, parseFqdn, parseName } from '../names';
import { groupsIn, kvPath } from '../vault/layout';
import type { KvStore } from '../vault/stores';
import { Copies } from './copies';
import { ExpiryIndex } from './expiry-index';
import { CertificateFacts, storedFacts } from './facts';
import type { ManagedSpec, RenewalState } from './managed';
import type { SecretData } from './service';

/** A secret in the inventory; a managed secret waiting for its first certificate has no certificate facts yet. */
export interface SecretSummary extends Partial<CertificateFacts> {
  name: string;
  /** A managed secret whose first certificate rks is still obtaining: nodes get 404 until then. */
  pending?: true;
  /** What is stored is not usable TLS material (kept as a classic RKS stored it), and why. */
  invalid?: string;
  groups: string[];
  ttl: number;
  /** rks obtains and renews it (managed secrets); false for pushed ones. */
  managed: boolean;
  /** For a managed secret: its issuer and schedule. */
  renewal?: { issuer: string; lifetime?: number; renewBefore?: number; inProgress?: boolean; nextAttempt: string; failures: number; lastAttempt?: string; lastError?: string };
  expired: boolean;
}

export interface GroupSummary {
  name: string;
  callback: boolean;
  secrets: number;
  nodes: number;
}

export interface NodeSummary {
  nodeId: string;
  registeredAt?: string;
  seenAt?: string;
  /** Revoked by an administrator: refused at registration until allowed back. */
  revokedAt?: string;
}

export interface Page {
  limit: number;
  /** The last name of the previous page. */
  after?: string;
}

export interface SecretQuery extends Page {
  /** Only secrets whose certificate expires within this many seconds (expired ones included). */
  expiringWithin?: number;
  group?: string;
}

/** Vault reads in flight at once for one page. */
const CONCURRENCY = 8;

function renewal(spec: ManagedSpec, state: RenewalState | undefined, info?: CertificateFacts): NonNullable<SecretSummary['renewal']> {
  // An ACME CA chooses the lifetime; renewal is then at two thirds of it.
  const [from, to] = info ? [Date.parse(info.notBefore) / 1000, Date.parse(info.notAfter) / 1000] : [NaN, NaN];
  const lifetime = spec.lifetime ?? (info ? Math.round(to - from) : undefined);
  // An ACME CA's renewal window decides when no renewBefore was given: no single figure to show.
  const renewBefore = spec.renewBefore ?? (lifetime !== undefined && spec.issuer === RKS_CA ? Math.round(lifetime / 3) : undefined);
  return {
    issuer: spec.issuer,
    ...(lifetime !== undefined ? { lifetime } : {}),
    ...(renewBefore !== undefined ? { renewBefore } : {}),
    ...(state?.inProgress ? { inProgress: true } : {}),
    nextAttempt: state ? new Date(state.renewAt * 1000).toISOString() : 'not scheduled',
    failures: state?.failures ?? 0,
    ...(state?.lastAttempt ? { lastAttempt: state.lastAttempt } : {}),
    ...(state?.lastError ? { lastError: state.lastError } : {}),
  };
}

function page<T extends string>(names: T[], p: Page): { names: T[]; next?: T } {
  const sorted = [...names].sort();
  const from = p.after === undefined ? 0 : sorted.findIndex((n) => n > p.after!);
  const slice = from < 0 ? [] : sorted.slice(from, from + p.limit);
  const more = from >= 0 && from + p.limit < sorted.length;
  return { names: slice, ...(more ? { next: slice[slice.length - 1] } : {}) };
}

/**
 * What rks holds, for its administrators: secrets with their certificates' facts, groups with
 * their sizes. Pages of at most `limit` names in name order; a page costs about two Vault reads
 * per entry plus one listing, whatever the total.
 */
export class Inventory {
  private readonly expiry: ExpiryIndex;
  private readonly copies: Copies;

  constructor(
    private readonly kv: KvStore,
    private readonly ttlOf: (data: SecretData) => number,
    private readonly managed?: { schedule(token: string): Promise<Record<string, RenewalState>> },
  ) {
    this.expiry = new ExpiryIndex(kv);
    this.copies = new Copies(kv);
  }

  async secrets(token: string, q: SecretQuery): Promise<{ secrets: SecretSummary[]; next?: string }> {
    let names: string[];
    if (q.group !== undefined) {
      const g = parseName('group name', q.group);
      if (!(await this.kv.exists(kvPath.groupConfig(g), token))) throw new NotFound(`group '${g}' not found`);
      names = await this.copies.names(token, g);
    } else {
      names = await this.secretNames(token);
    }
    const schedule = (await this.managed?.schedule(token)) ?? {};
    // Waiting for a first certificate: listed, except where a group or an expiry is asked for.
    if (q.group === undefined && q.expiringWithin === undefined) {
      const held = new Set(names);
      names = names.concat(Object.keys(schedule).filter((n) => schedule[n].pending && !held.has(n)));
    }
    if (q.expiringWithin !== undefined) {
      const expiries = await this.completeIndex(token);
      const limit = Date.now() / 1000 + q.expiringWithin;
      names = names.filter((n) => (expiries.get(n) ?? Infinity) <= limit);
    }
    const p = page(names, q);
    const items = await mapLimited(p.names, CONCURRENCY, (n) => this.summary(token, n, schedule));
    return { secrets: items.filter((i): i is SecretSummary => i !== null), ...(p.next ? { next: p.next } : {}) };
  }

  /** One secret's entry of the inventory (its certificate's facts; never its key). */
  async secret(token: string, name: string): Promise<SecretSummary> {
    const fqdn = parseFqdn(name);
    const summary = await this.summary(token, fqdn, (await this.managed?.schedule(token)) ?? {});
    if (!summary) throw new NotFound(`secret '${fqdn}' not found`);
    return summary;
  }

  async groups(token: string, q: Page): Promise<{ groups: GroupSummary[]; next?: string }> {
    const names = groupsIn(await this.kv.list(kvPath.groups, token));
    const p = page(names, q);
    const items = await mapLimited(p.names, CONCURRENCY, async (name): Promise<GroupSummary | null> => {
      const [config, secrets, nodes] = await Promise.all([
        this.kv.read<GroupRegInfo>(kvPath.groupConfig(name), token),
        this.copies.names(token, name),
        this.kv.list(kvPath.groupNodes(name), token),
      ]);
      // A group half-deleted a moment ago has no config left: not listed.
      if (!config) return null;
      return { name, callback: Boolean(config.data.callbackURL), secrets: secrets.length, nodes: nodes.filter((n) => !n.endsWith('/')).length };
    });
    return { groups: items.filter((i): i is GroupSummary => i !== null), ...(p.next ? { next: p.next } : {}) };
  }

  /**
   * A group's admitted nodes with their registration and when rks last saw them (registration,
   * or a token renewal through rks, recorded at most hourly): a page in id order.
   */
  async nodes(token: string, group: string, q: Page): Promise<{ nodes: NodeSummary[]; next?: string }> {
    const g = parseName('group name', group);
    if (!(await this.kv.exists(kvPath.groupConfig(g), token))) throw new NotFound(`group '${g}' not found`);
    const admitted = (await this.kv.list(kvPath.groupNodes(g), token)).filter(isName);
    const revoked = new Set((await this.kv.list(kvPath.groupRevokedNodes(g), token)).filter(isName));
    const p = page([...new Set([...admitted, ...revoked])].sort(), q);
    const items = await mapLimited(p.names, CONCURRENCY, async (id): Promise<NodeSummary | null> => {
      if (revoked.has(id)) {
        const r = await this.kv.read<{ revokedAt: string }>(kvPath.groupRevokedNode(g, id), token);
        if (r) return { nodeId: id, revokedAt: r.data.revokedAt };
      }
      const r = await this.kv.read<NodeRecord>(kvPath.groupNode(g, id), token);
      return r ? { nodeId: id, registeredAt: r.data.registeredAt, seenAt: r.data.seenAt } : null;
    });
    return { nodes: items.filter((i): i is NodeSummary => i !== null), ...(p.next ? { next: p.next } : {}) };
  }

  /** Every secret's name: the keys at the top of the mount that are secret names (rks's own have no dot). */
  private async secretNames(token: string): Promise<string[]> {
    return (await this.kv.list(kvPath.secrets, token)).filter(isSecretName);
  }

  private async summary(token: string, fqdn: string, schedule: Record<string, RenewalState>): Promise<SecretSummary | null> {
    const [entry, groups] = await Promise.all([
      this.kv.read<SecretData>(kvPath.secret(fqdn), token),
      this.copies.groupsOf(token, fqdn),
    ]);
    if (!entry) {
      const waiting = schedule[fqdn]?.pending;
      if (!waiting) return null;
      return { name: fqdn, pending: true, groups, ttl: waiting.ttl ?? this.ttlOf({} as SecretData), managed: true, renewal: renewal(waiting.spec, schedule[fqdn]), expired: false };
    }
    // Secrets stored before facts were kept are parsed (not rewritten: that would push their
    // previous version, the rollback, out of Vault's two).
    const info = entry.data.info ?? storedFacts(entry.data.certificate);
    if ('invalid' in info) {
      return { name: fqdn, invalid: info.invalid, groups, ttl: this.ttlOf(entry.data), managed: false, expired: false };
    }
    return {
      name: fqdn,
      ...info,
      groups,
      ttl: this.ttlOf(entry.data),
      managed: Boolean(entry.data.managed),
      ...(entry.data.managed ? { renewal: renewal(entry.data.managed, schedule[fqdn], info) } : {}),
      expired: Date.parse(info.notAfter) <= Date.now(),
    };
  }

  /** The expiry index, with any secret it misses added (older secrets, a write that failed half-way). */
  private async completeIndex(token: string): Promise<Map<string, number>> {
    const [expiries, names] = await Promise.all([this.expiry.all(token), this.secretNames(token)]);
    const missing = names.filter((n) => !expiries.has(n));
    await mapLimited(missing, CONCURRENCY, async (fqdn) => {
      const entry = await this.kv.read<SecretData>(kvPath.secret(fqdn), token);
      if (!entry) return;
      const info = entry.data.info ?? storedFacts(entry.data.certificate);
      if ('invalid' in info) return;
      await this.expiry.set(token, fqdn, info.notAfter);
      expiries.set(fqdn, Math.floor(Date.parse(info.notAfter) / 1000));
    });
    // Left behind by a deletion that stopped half-way: checked one by one, so a secret created
    // since the listing above is never dropped.
    const listed = new Set(names);
    await mapLimited([...expiries.keys()].filter((n) => !listed.has(n)), CONCURRENCY, async (fqdn) => {
      if (await this.kv.exists(kvPath.secret(fqdn), token)) return;
      await this.expiry.set(token, fqdn, null);
      expiries.delete(fqdn);
    });
    return expiries;
  }
}
