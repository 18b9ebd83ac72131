import { NotFound } from '../errors';
import { mapLimited } from '../concurrency';
import { isSecretName, parseFqdn, parseName } from '../names';
import { groupsIn, kvPath } from '../vault/layout';
import type { KvEntry, KvStore } from '../vault/stores';
import type { Copies } from './copies';
import type { Storage } from './storage';
import { Catalog, CatalogEntry, RENEWAL_STATUSES, RenewalStatus, RenewalSummary, factsOf, renewalStatus } from './catalog';
import { ListedEntry, Listing, Listings, unlisted } from './listing';
import type { GroupRecords, GroupRegInfo } from '../records/groups';
import type { NodeRecords } from '../records/nodes';
import { CertificateFacts, ManagedSpec, RKS_CA, SecretData } from '../records/secrets';

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
  renewal?: {
    issuer: string;
    lifetime?: number;
    renewBefore?: number;
    status: RenewalStatus;
    inProgress?: boolean;
    nextAttempt: string;
    failures: number;
    lastAttempt?: string;
    lastError?: string;
  };
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
  /** Only managed secrets whose renewal is in this state. */
  renewal?: RenewalStatus;
}

/** How often a listing has the catalog checked against the secrets stored (see reconcile). */
const RECONCILE_EVERY_MS = 10 * 60_000;

/** Vault reads in flight at once for one page of groups or nodes. */
const CONCURRENCY = 8;

function renewal(spec: ManagedSpec, state: RenewalSummary | undefined, status: RenewalStatus, info?: CertificateFacts): NonNullable<SecretSummary['renewal']> {
  // An ACME CA chooses the lifetime; renewal is then at two thirds of it.
  const [from, to] = info ? [Date.parse(info.notBefore) / 1000, Date.parse(info.notAfter) / 1000] : [NaN, NaN];
  const lifetime = spec.lifetime ?? (info ? Math.round(to - from) : undefined);
  // An ACME CA's renewal window decides when no renewBefore was given: no single figure to show.
  const renewBefore = spec.renewBefore ?? (lifetime !== undefined && spec.issuer === RKS_CA ? Math.round(lifetime / 3) : undefined);
  return {
    issuer: spec.issuer,
    // The schedule is read as written by whoever may write it: only well-typed fields are shown.
    ...(Number.isFinite(lifetime) ? { lifetime } : {}),
    ...(Number.isFinite(renewBefore) ? { renewBefore } : {}),
    status,
    ...(state?.inProgress === true ? { inProgress: true } : {}),
    nextAttempt: state && Number.isFinite(state.renewAt) ? new Date(state.renewAt * 1000).toISOString() : 'not scheduled',
    failures: Number.isSafeInteger(state?.failures) ? state!.failures : 0,
    ...(typeof state?.lastAttempt === 'string' ? { lastAttempt: state.lastAttempt } : {}),
    ...(typeof state?.lastError === 'string' ? { lastError: state.lastError } : {}),
  };
}

/** A page of `sorted` (names in order): the first `limit` after `after`. */
function page<T extends string>(sorted: T[], p: Page): { names: T[]; next?: T } {
  let from = 0;
  if (p.after !== undefined) {
    for (let hi = sorted.length; from < hi; ) {
      const mid = (from + hi) >>> 1;
      if (sorted[mid]! <= p.after) from = mid + 1;
      else hi = mid;
    }
  }
  const slice = sorted.slice(from, from + p.limit);
  const more = from + p.limit < sorted.length;
  return { names: slice, ...(more ? { next: slice[slice.length - 1] } : {}) };
}

/**
 * What rks holds, for its administrators: secrets with their certificates' facts, groups with
 * their sizes. Pages of at most `limit` names in name order. Secrets are listed from the
 * catalog (a fixed number of Vault reads for any number of secrets), kept in memory while the
 * catalog's serial holds: a page then costs two small reads with the caller's token (the serial
 * and the renewal schedule), whatever the total.
 */
export class Inventory {
  private readonly catalog: Catalog;
  private readonly copies: Copies;
  private readonly listings: Listings;
  private reconciling?: Promise<void>;
  private reconciledAt = 0;

  private readonly kv: KvStore;
  private readonly groupRecords: GroupRecords;
  private readonly nodeRecords: NodeRecords;

  constructor(
    storage: Storage,
    private readonly ttlOf: (data: SecretData) => number,
    listings?: Listings,
  ) {
    ({ kv: this.kv, catalog: this.catalog, copies: this.copies, groups: this.groupRecords, nodes: this.nodeRecords } = storage);
    this.listings = listings ?? new Listings(this.catalog);
  }

  async secrets(token: string, q: SecretQuery): Promise<{ secrets: SecretSummary[]; next?: string }> {
    const g = q.group === undefined ? undefined : parseName('group name', q.group);
    if (g !== undefined) await this.groupRecords.mustExist(token, g);
    let listing = await this.current(token);
    while (listing.released) listing = await this.current(token);
    const now = Date.now();
    const limit = q.expiringWithin === undefined ? undefined : now + q.expiringWithin * 1000;
    // From the cursor on, as far as the page needs: every page of a filter reads each entry once.
    const fits = (i: number) =>
      (g === undefined || listing.groups(i).includes(g)) &&
      (q.renewal === undefined || listing.status(i, now) === q.renewal) &&
      (limit === undefined || listing.notAfter(i) <= limit);
    const items: SecretSummary[] = [];
    let i = listing.start(q.after);
    for (; i < listing.size && items.length < q.limit; i++) if (fits(i)) items.push(this.summary(listing.name(i), listing.entry(i))!);
    while (i < listing.size && !fits(i)) i++;
    const more = i < listing.size && items.length > 0;
    return { secrets: items, ...(more ? { next: items[items.length - 1]!.name } : {}) };
  }

  /** How an issuer's managed secrets stand: counts by renewal state, and a few of the failing ones (most failures first). */
  async renewals(token: string, issuer: string): Promise<{ counts: Record<RenewalStatus, number>; failures: { name: string; failures: number; lastError: string }[] }> {
    let listing = await this.current(token);
    while (listing.released) listing = await this.current(token);
    const counts = Object.fromEntries(RENEWAL_STATUSES.map((s) => [s, 0])) as Record<RenewalStatus, number>;
    const failing: { name: string; failures: number; lastError: string }[] = [];
    const now = Date.now();
    for (let i = 0; i < listing.size; i++) {
      if (listing.issuer(i) !== issuer) continue;
      const status = listing.status(i, now)!;
      counts[status]++;
      if (status !== 'failing') continue;
      const { renewal } = listing.entry(i);
      failing.push({ name: listing.name(i), failures: renewal?.failures ?? 0, lastError: renewal?.lastError ?? '' });
    }
    failing.sort((a, b) => b.failures - a.failures || (a.name < b.name ? -1 : 1));
    return { counts, failures: failing.slice(0, 10) };
  }

  /**
   * One secret's entry of the inventory (its certificate's facts; never its key), read from the
   * secret itself (`known`: as a writer just read it back).
   */
  async secret(token: string, name: string, known?: CatalogEntry | null): Promise<SecretSummary> {
    const fqdn = parseFqdn(name);
    const summary = this.summary(fqdn, known ?? (await this.catalog.stored(token, fqdn)) ?? null);
    if (!summary) throw new NotFound(`secret '${fqdn}' not found`);
    return summary;
  }

  async groups(token: string, q: Page): Promise<{ groups: GroupSummary[]; next?: string }> {
    const names = groupsIn(await this.kv.list(kvPath.groups, token));
    const p = page(names, q);
    const items = await mapLimited(p.names, CONCURRENCY, async (name): Promise<GroupSummary | null> => {
      const [config, secrets, nodes] = await Promise.all([
        this.groupRecords.config(token, name) as Promise<KvEntry<GroupRegInfo> | null>,
        this.copies.names(token, name),
        this.nodeRecords.ids(token, name),
      ]);
      // A group half-deleted a moment ago has no config left: not listed.
      if (!config) return null;
      return { name, callback: Boolean(config.data.callbackURL), secrets: secrets.length, nodes: nodes.length };
    });
    return { groups: items.filter((i): i is GroupSummary => i !== null), ...(p.next ? { next: p.next } : {}) };
  }

  /**
   * A group's admitted nodes with their registration and when rks last saw them (registration,
   * or a token renewal through rks, recorded at most hourly): a page in id order.
   */
  async nodes(token: string, group: string, q: Page): Promise<{ nodes: NodeSummary[]; next?: string }> {
    const g = parseName('group name', group);
    await this.groupRecords.mustExist(token, g);
    const admitted = await this.nodeRecords.ids(token, g);
    const revoked = new Set(await this.groupRecords.revokedIds(token, g));
    const p = page([...new Set([...admitted, ...revoked])].sort(), q);
    const items = await mapLimited(p.names, CONCURRENCY, async (id): Promise<NodeSummary | null> => {
      if (revoked.has(id)) {
        const r = await this.groupRecords.revocation(token, g, id);
        if (r) return { nodeId: id, revokedAt: r.data.revokedAt };
      }
      const r = await this.nodeRecords.read(token, g, id);
      return r ? { nodeId: id, registeredAt: r.data.registeredAt, seenAt: r.data.seenAt } : null;
    });
    return { nodes: items.filter((i): i is NodeSummary => i !== null), ...(p.next ? { next: p.next } : {}) };
  }

  /**
   * The catalog as of its serial now; what it may have lost is repaired beside, at most every
   * few minutes (see reconcile).
   */
  private async current(token: string): Promise<Listing> {
    if (!this.reconciling && Date.now() - this.reconciledAt >= RECONCILE_EVERY_MS) {
      this.reconciling = this.reconcile(token)
        .catch(() => undefined)
        .finally(() => (this.reconciling = undefined));
    }
    return this.listings.current(token);
  }

  /**
   * Makes the catalog describe exactly the secrets stored: a description lost to a crash made
   * again, the leftovers of an interrupted deletion dropped. Lists the whole mount (one Vault
   * call that grows with the secrets), so a listing starts it at most every few minutes and
   * does not wait for it; the next page shows what it repaired.
   */
  async reconcile(token: string): Promise<void> {
    this.reconciledAt = Date.now();
    // Against the listing in memory: the shards are not read a second time.
    const names = await this.secretNames(token);
    let listing = await this.listings.current(token);
    while (listing.released) listing = await this.listings.current(token);
    const repaired = await this.catalog.repair(token, unlisted(names, listing));
    // Nothing to repair (the rule): the listing in memory stands.
    if (repaired) this.listings.forget();
  }

  /** Every secret's name: the keys at the top of the mount that are secret names (rks's own have no dot). */
  private async secretNames(token: string): Promise<string[]> {
    return (await this.kv.list(kvPath.secrets, token)).filter(isSecretName);
  }

  private summary(fqdn: string, entry: ListedEntry | null): SecretSummary | null {
    if (!entry) return null;
    const { groups } = entry;
    const ttl = this.ttlOf({ meta: entry.ttl ? { ttl: entry.ttl } : undefined } as SecretData);
    const status = renewalStatus(entry);
    if (entry.managed && !entry.info) return { name: fqdn, pending: true, groups, ttl, managed: true, renewal: renewal(entry.managed, entry.renewal, status!), expired: false };
    if (!entry.info) return { name: fqdn, invalid: entry.invalid ?? 'no certificate facts', groups, ttl, managed: false, expired: false };
    return {
      name: fqdn,
      ...factsOf(entry.info),
      groups,
      ttl,
      managed: Boolean(entry.managed),
      ...(entry.managed ? { renewal: renewal(entry.managed, entry.renewal, status!, entry.info) } : {}),
      expired: Date.parse(entry.info.notAfter) <= Date.now(),
    };
  }
}
