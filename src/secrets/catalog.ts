import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { mapLimited } from '../concurrency';
import { isSecretName } from '../names';
import { kvPath } from '../vault/layout';
import { KvEntry, KvStore, NO_CHANGE } from '../vault/stores';
import { storedFacts } from './facts';
import { CertificateFacts, isManagedStub, ManagedMaterial, ManagedSpec, ManagedSpecRecord, RenewalState, SecretData, SecretRecords } from '../records/secrets';
import type { Copies, CopyView } from './copies';

/**
 * 1,024 shards: at 100,000 secrets each holds about 100 entries (≈ 50 KB). Vault refuses an
 * object of more than 10,000 members by default, which puts the ceiling near ten million.
 */
export const CATALOG_SHARDS = 1024;
/** Shards read at once: more keeps more of them in rks's memory at once and reads no faster (the parse is the cost). */
const READ_CONCURRENCY = 4;

/** What the inventory shows of one secret: never its key. */
export interface CatalogEntry {
  /** The version of the secret described. */
  version: number;
  info?: CertificateFacts;
  /** What is stored is no usable certificate (a classic's placeholder), and why. */
  invalid?: string;
  ttl?: number;
  managed?: ManagedSpec;
  /** A managed secret: where its renewal stands (absent while no instance scheduled it). */
  renewal?: RenewalSummary;
  groups: string[];
  /** The version of the secret's group index the groups come from (0: none). */
  groupsVersion: number;
}

/** What the inventory, the metrics and the expiry warnings show of a managed secret's renewal. */
export interface RenewalSummary {
  /** When the next attempt is due (seconds since the epoch). */
  renewAt: number;
  failures: number;
  lastAttempt?: string;
  lastError?: string;
  copiesBehind?: true;
  queued?: true;
  /** An instance is renewing it now (seen where the state is read afresh: one secret's info). */
  inProgress?: true;
}

/**
 * A managed secret's renewal at a glance: failing (its last attempt failed), queued (waiting for
 * a slot of its ACME issuer's order budget), waiting for its first certificate, due (its time
 * has come: being renewed), or scheduled.
 */
export type RenewalStatus = 'pending' | 'scheduled' | 'due' | 'queued' | 'failing';
export const RENEWAL_STATUSES: RenewalStatus[] = ['pending', 'scheduled', 'due', 'queued', 'failing'];

export function renewalStatus(e: Pick<CatalogEntry, 'managed' | 'info' | 'renewal'>, now = Date.now()): RenewalStatus | undefined {
  if (!e.managed) return undefined;
  // Not scheduled at all (a write lost half-way): nothing will renew it, which is a failure.
  if (!e.renewal || e.renewal.failures > 0) return 'failing';
  if (e.renewal?.inProgress) return 'due';
  if (e.renewal?.queued) return 'queued';
  if (!e.info) return 'pending';
  if (e.renewal && e.renewal.renewAt * 1000 <= now) return 'due';
  return 'scheduled';
}

function summaryOf(state: RenewalState): RenewalSummary {
  const { renewAt, failures, lastAttempt, lastError, copiesBehind, queued, inProgress } = state;
  return {
    renewAt: Number.isSafeInteger(renewAt) ? renewAt : 0,
    failures: Number.isSafeInteger(failures) ? failures : 0,
    ...(typeof lastAttempt === 'string' ? { lastAttempt } : {}),
    ...(typeof lastError === 'string' ? { lastError: lastError.slice(0, 500) } : {}),
    ...(copiesBehind === true ? { copiesBehind } : {}),
    ...(queued === true ? { queued } : {}),
    ...(inProgress === true ? { inProgress } : {}),
  };
}

interface Shard {
  secrets: Record<string, CatalogEntry>;
}

const SHARDS = new Set(Array.from({ length: CATALOG_SHARDS }, (_, i) => i.toString(16).padStart(3, '0')));

export const shardOf = (fqdn: string): string => (createHash('sha256').update(fqdn).digest().readUInt16BE(0) % CATALOG_SHARDS).toString(16).padStart(3, '0');

/** Rounds of describe, write and check before a secret that keeps changing is left to its next writer. */
const REFRESH_ROUNDS = 3;

const isString = (v: unknown): v is string => typeof v === 'string';
const isDate = (v: unknown): v is string => isString(v) && !Number.isNaN(Date.parse(v));

/** Only what the catalog writes: a shard is read as untrusted (anyone who may write it may write anything). */
function isEntry(e: unknown): e is CatalogEntry {
  const x = e as Partial<CatalogEntry> | null;
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const info = x.info as Partial<CertificateFacts> | undefined;
  const managed = x.managed as Partial<ManagedSpec> | undefined;
  const renewal = x.renewal as Partial<RenewalSummary> | undefined;
  return (
    Number.isSafeInteger(x.version) && Number.isSafeInteger(x.groupsVersion) && Array.isArray(x.groups) && x.groups.every(isString) &&
    (x.ttl === undefined || (Number.isSafeInteger(x.ttl) && x.ttl > 0)) &&
    (x.invalid === undefined || isString(x.invalid)) &&
    (info === undefined ||
      (typeof info === 'object' && info !== null && isString(info.subject) && isString(info.issuer) && isDate(info.notBefore) && isDate(info.notAfter) &&
        isString(info.keyType) && isString(info.sha256Fingerprint) && Number.isSafeInteger(info.chainLength) && Array.isArray(info.sans) && info.sans.every(isString))) &&
    (managed === undefined || (typeof managed === 'object' && managed !== null && isString(managed.issuer))) &&
    (renewal === undefined ||
      (typeof renewal === 'object' && renewal !== null && Number.isSafeInteger(renewal.renewAt) && Number.isSafeInteger(renewal.failures) &&
        (renewal.lastError === undefined || isString(renewal.lastError)) && (renewal.lastAttempt === undefined || isString(renewal.lastAttempt))))
  );
}

/** The facts as the inventory answers them: these fields and no other. */
export function factsOf(info: CertificateFacts): CertificateFacts {
  const { subject, sans, issuer, notBefore, notAfter, keyType, sha256Fingerprint, chainLength } = info;
  return { subject, sans, issuer, notBefore, notAfter, keyType, sha256Fingerprint, chainLength };
}

/**
 * The inventory's index: every secret's facts, TTL, managed spec and groups in a fixed number
 * of KV entries, so that a listing reads the shards, not every secret. Every write of a secret
 * or of its groups ends with `refresh`, which describes what Vault holds then and checks it
 * again after writing (a writer that read before someone else's change and wrote after it
 * writes again); a description lost to a crash is made again by `reconcile` (init, and every
 * listing that rebuilds). Any change writes the serial, whose version tells a cached listing
 * it is out of date.
 */
export class Catalog {
  private bumping?: Promise<void>;
  /** A change landed whose serial could not be written: listings would not see it. */
  private owed = false;
  private next?: Promise<void>;

  constructor(
    private readonly kv: KvStore,
    private readonly records: Pick<SecretRecords, 'read'>,
    private readonly material: Pick<ManagedMaterial, 'read'>,
    /** Where the secret's groups are kept (the copies' index). */
    private readonly index: Pick<Copies, 'indexEntry'>,
  ) {}

  /**
   * Brings `fqdn`'s entry in step with the secret and its group index as Vault holds them now.
   * Answers the entry as written and read back (null: no secret, or one still changing).
   */
  async refresh(token: string, fqdn: string, view: CopyView = 'admin'): Promise<CatalogEntry | null> {
    // Each write is announced as soon as it landed, beside the check that follows it.
    const announced: Promise<void>[] = [];
    try {
      return await this.settle(token, fqdn, () => announced.push(this.announce(token)), view);
    } finally {
      // Whatever landed is announced, even when what followed failed; and a change whose
      // announcement failed before is announced now (its entry, written, no longer changes).
      if (announced.length === 0 && this.owed) announced.push(this.announce(token));
      await Promise.all(announced);
    }
  }

  /** The serial written (tried twice); until it is, the next refresh owes it. */
  private announce(token: string): Promise<void> {
    return this.bump(token)
      .catch(() => this.bump(token))
      .then(
        () => void (this.owed = false),
        (err) => {
          this.owed = true;
          throw err;
        },
      );
  }

  /**
   * Writes what Vault holds, reads it again, and writes again while it changed: a writer that
   * read before someone else's change and wrote after it does not leave its stale entry. A
   * secret still changing after a few rounds loses its entry, which the next listing makes
   * again. Answers the entry as written.
   */
  private async settle(token: string, fqdn: string, wrote: () => void, view: CopyView = 'admin'): Promise<CatalogEntry | null> {
    const first = await Promise.all([this.stored(token, fqdn, view), this.kv.read<Shard>(kvPath.catalogShard(shardOf(fqdn)), token)]);
    if (first[0] === undefined) return null;
    let next = first[0];
    let shard: KvEntry<Shard> | null | undefined = first[1];
    for (let round = 1; ; round++) {
      if (await this.put(token, fqdn, next, shard)) wrote();
      shard = undefined;
      const now = await this.stored(token, fqdn, view);
      if (now === undefined) return null;
      if (isDeepStrictEqual(now, next)) return next;
      if (round === REFRESH_ROUNDS) {
        if (await this.put(token, fqdn, null)) wrote();
        return null;
      }
      next = now;
    }
  }

  /**
   * Writes the serial, after the caller's change landed. Callers that come while a write is in
   * flight share the one that follows it (it starts after their changes): under load, a few
   * writes of the serial a second rather than one per change.
   */
  private bump(token: string): Promise<void> {
    if (!this.bumping) {
      this.bumping = this.kv
        .write(kvPath.catalogSerial, { at: Date.now() }, token)
        .then(() => undefined)
        .finally(() => (this.bumping = undefined));
      return this.bumping;
    }
    this.next ??= this.bumping.catch(() => undefined).then(() => {
      this.next = undefined;
      return this.bump(token);
    });
    return this.next;
  }

  /** Every well-formed entry, by name (anything else is left out, and made again by `reconcile`). */
  async all(token: string): Promise<Map<string, CatalogEntry>> {
    const out = new Map<string, CatalogEntry>();
    await this.scan(token, (fqdn, e) => void out.set(fqdn, e));
    return out;
  }

  /**
   * Every well-formed entry, handed to `fn` a shard at a time: what keeps only a little of each
   * entry holds only a few shards in memory at once, whatever the number of secrets.
   */
  async scan(token: string, fn: (fqdn: string, e: CatalogEntry) => void): Promise<void> {
    const shards = (await this.kv.list(kvPath.catalogShards, token)).filter((k) => SHARDS.has(k));
    await mapLimited(shards, READ_CONCURRENCY, async (s) => {
      for (const [fqdn, e] of await this.shard(token, s)) fn(fqdn, e);
    });
  }

  /** A shard's well-formed entries. */
  private async shard(token: string, s: string): Promise<[string, CatalogEntry][]> {
    const secrets = (await this.kv.read<Shard>(kvPath.catalogShard(s), token))?.data.secrets;
    if (typeof secrets !== 'object' || secrets === null) return [];
    return Object.entries(secrets).filter((x): x is [string, CatalogEntry] => isSecretName(x[0]) && shardOf(x[0]) === s && isEntry(x[1]));
  }

  /** Changes whenever an entry does: a listing cached at one serial is current while it holds. */
  async serial(token: string): Promise<number> {
    return (await this.kv.read(kvPath.catalogSerial, token))?.version ?? 0;
  }

  /**
   * Makes the catalog describe exactly the secrets stored (`names`: a listing of the mount):
   * the missing described, the leftovers of an interrupted deletion dropped, a shard at a time.
   * Answers how many secrets the catalog then describes, and how many entries it repaired.
   * Repairs bring the catalog to what every reader already sees as stored, so they do not write
   * the serial.
   */
  async reconcile(token: string, names: string[]): Promise<{ described: number; repaired: number }> {
    const byShard = new Map<string, Set<string>>();
    for (const n of names) {
      if (!isSecretName(n)) continue;
      const s = shardOf(n);
      if (!byShard.has(s)) byShard.set(s, new Set());
      byShard.get(s)!.add(n);
    }
    const shards = new Set([...(await this.kv.list(kvPath.catalogShards, token)).filter((k) => SHARDS.has(k)), ...byShard.keys()]);
    let described = 0;
    let repaired = 0;
    await mapLimited([...shards], READ_CONCURRENCY, async (s) => {
      const stored = byShard.get(s) ?? new Set<string>();
      const present = new Set((await this.shard(token, s)).map(([n]) => n));
      // Checked one by one: a secret created since the listing is never dropped.
      const repair = [...[...stored].filter((n) => !present.has(n)), ...[...present].filter((n) => !stored.has(n))];
      described += [...present].filter((n) => stored.has(n)).length;
      repaired += repair.length;
      for (const fqdn of repair) if (await this.settle(token, fqdn, () => undefined)) described++;
    });
    return { described, repaired };
  }

  /**
   * `reconcile` for the names that `unlisted` found: each described again as Vault holds it
   * now (a secret created or deleted since is left as it is). Answers how many entries it wrote.
   */
  async repair(token: string, names: string[]): Promise<number> {
    let wrote = 0;
    await mapLimited(names, READ_CONCURRENCY, (fqdn) => this.settle(token, fqdn, () => void wrote++));
    return wrote;
  }

  /**
   * The entry that describes what Vault holds of `fqdn` now; null when no secret is stored. In
   * rks's own view (`managed`), which reads managed secrets only: undefined when `fqdn` is not
   * one (any more), which is then the administrator's to describe.
   */
  async stored(token: string, fqdn: string, view: CopyView = 'admin'): Promise<CatalogEntry | null | undefined> {
    const [head, index] = await Promise.all([
      view === 'admin' ? this.records.read(token, fqdn) : undefined,
      this.index.indexEntry(token, fqdn),
    ]);
    if (head === null) return null;
    const groups = { groups: [...(index?.data.groups ?? [])].sort(), groupsVersion: index?.version ?? 0 };
    if (head && !isManagedStub(head.data)) return { ...describe(head.data), version: head.version, ...groups };
    const [material, state, asked] = await Promise.all([
      this.material.read(token, fqdn),
      this.kv.read<RenewalState>(kvPath.managedState(fqdn), token),
      head ? undefined : this.kv.read<ManagedSpecRecord>(kvPath.managedSpec(fqdn), token),
    ]);
    // rks's own view describes a managed secret only while an administrator's spec says it is one.
    if (!head && !asked) return undefined;
    const spec = head ? (head.data as { managed: ManagedSpec }).managed : asked!.data.spec;
    const ttl = head ? head.data.meta?.ttl : asked!.data.ttl;
    return {
      ...(material ? describe(material.data) : {}),
      ...(Number(ttl) > 0 ? { ttl: Number(ttl) } : {}),
      managed: spec,
      ...(state ? { renewal: summaryOf(state.data) } : {}),
      version: material?.version ?? 0,
      ...groups,
    };
  }

  /**
   * Stores `next` as `fqdn`'s entry (null: none); answers whether that changed the shard.
   * `seen`: the shard as read just before.
   */
  private async put(token: string, fqdn: string, next: CatalogEntry | null, seen?: KvEntry<Shard> | null): Promise<boolean> {
    let changed = false;
    await this.kv.update<Shard>(
      kvPath.catalogShard(shardOf(fqdn)),
      token,
      (shard) => {
        const secrets = { ...(shard?.secrets ?? {}) };
        changed = false;
        // Vault answers an object's members in its own order: compared as values.
        if (next ? isDeepStrictEqual(secrets[fqdn], next) : !(fqdn in secrets)) return NO_CHANGE;
        if (next) secrets[fqdn] = next;
        else delete secrets[fqdn];
        changed = true;
        return { secrets };
      },
      { seen },
    );
    return changed;
  }
}

/** The facts of what is stored (parsed for secrets stored before facts were kept). */
function describe(data: SecretData): Omit<CatalogEntry, 'version' | 'groups' | 'groupsVersion'> {
  const info = data.info ?? storedFacts(data.certificate);
  const ttl = Number(data.meta?.ttl) > 0 ? { ttl: Number(data.meta!.ttl) } : {};
  if ('invalid' in info) return { invalid: info.invalid, ...ttl };
  return { info: factsOf(info), ...ttl, ...(data.managed ? { managed: data.managed } : {}) };
}
