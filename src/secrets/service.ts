import { Conflict, Forbidden, Gone, NotFound } from '../errors';
import { parseFqdn } from '../names';
import type { KvEntry } from '../vault/stores';
import type { Copies } from './copies';
import type { Catalog } from './catalog';
import { certificateFacts, expiryWarnings, storedFacts } from './facts';
import type { Readers } from './readers';
import type { Storage } from './storage';
import { validateTlsMaterial } from './tls';
import { isManagedStub, ManagedMaterial, SecretData, SecretRecords, StoredSecret, secretNotFound } from '../records/secrets';
import type { SecretAnswer } from '../sdk/wire';


/** What a push answers: accepted, with what deserves a look. */
export interface PushOutcome {
  warnings: string[];
}

/** The expiry of a stored secret, from its facts or (older secrets) its certificate. */
export class ExpiryOf {
  private readonly parsed = new Map<string, string>();

  /** The certificate's end, or null when what is stored is no certificate (a classic's placeholder). */
  notAfter(data: SecretData): string | null {
    if (data.info?.notAfter) return data.info.notAfter;
    let at = this.parsed.get(data.certificate);
    if (at === undefined) {
      // Parsing costs about 100 µs: remembered, so the hot path pays it once per certificate.
      if (this.parsed.size >= 10_000) this.parsed.clear();
      const facts = storedFacts(data.certificate);
      at = 'invalid' in facts ? '' : facts.notAfter;
      this.parsed.set(data.certificate, at);
    }
    return at || null;
  }

  expired(data: SecretData, now = Date.now()): string | undefined {
    const at = this.notAfter(data);
    return at !== null && Date.parse(at) <= now ? at : undefined;
  }
}


export interface ManagedHooks {
  /** After a push over a managed secret or a rollback: renewed or not, as `head` (what `<fqdn>` holds now) says. */
  reschedule(token: string, fqdn: string, head: StoredSecret | null): Promise<void>;
  /** The secret was deleted: its certificates, its state and its place in the schedule go. */
  forget(token: string, fqdn: string): Promise<void>;
}

/** What is told of a certificate's expiry as it changes (the expiry metrics follow within a second). */
export interface ExpiryNotes {
  /** `notAfter` null: the secret was deleted; `managed`: rks renews it. */
  note(fqdn: string, notAfter: string | null, managed?: boolean): void;
}

/** What the secrets' rules work with besides Vault's store. */
export interface SecretServiceParts {
  /** The renewal schedule: kept in step when a managed secret is replaced or rolled back. */
  managed: ManagedHooks;
  /** Which group's copies a token reads (a node's), if any. */
  readers: Pick<Readers, 'groupOf'>;
  /** Told after a certificate's expiry changed. */
  expiry: ExpiryNotes;
}

export class SecretService {
  private readonly records: SecretRecords;
  private readonly material: ManagedMaterial;
  private readonly catalog: Catalog;
  private readonly copies: Copies;
  private readonly managed: ManagedHooks;
  private readonly readers: Pick<Readers, 'groupOf'>;
  private readonly expiry: ExpiryNotes;
  readonly expiryOf = new ExpiryOf();

  constructor(
    storage: Storage,
    private readonly defaultTtl: number,
    parts: SecretServiceParts,
  ) {
    ({ records: this.records, material: this.material, catalog: this.catalog, copies: this.copies } = storage);
    ({ managed: this.managed, readers: this.readers, expiry: this.expiry } = parts);
  }

  /**
   * The hot path: exactly one Vault read with the caller's token (and, the first time rks sees
   * a token, its lookup). A node reads its group's copy; Vault refuses any other. An expired
   * certificate is not handed out (410): a TLS client would refuse it anyway, and the edge
   * learns why.
   */
  async get(token: string, name: string): Promise<SecretAnswer> {
    const fqdn = parseFqdn(name);
    const group = await this.readers.groupOf(token);
    const entry = group === null ? await this.adminRead(token, fqdn) : await this.nodeRead(token, group, fqdn);
    const expired = this.expiryOf.expired(entry.data);
    if (expired) throw new Gone(`the certificate of '${fqdn}' expired at ${expired}`, 'certificate_expired');
    const { certificate, private_key } = entry.data;
    return { data: { certificate, private_key, meta: { ttl: this.ttlOf(entry.data) } } };
  }

  /** An administrator's read: the secret, or a managed one's certificate and key. */
  private async adminRead(token: string, fqdn: string): Promise<KvEntry<SecretData>> {
    const src = await this.copies.source(token, fqdn);
    if (!src) throw secretNotFound(fqdn);
    if (!src.entry) throw new NotFound(`secret '${fqdn}' has no certificate yet: rks is obtaining its first`);
    return src.entry;
  }

  /** A node's read: its group's copy, or nothing for a secret the group does not hold (403, as Vault answers for any path a policy does not grant). */
  private async nodeRead(token: string, g: string, fqdn: string): Promise<KvEntry<SecretData>> {
    const entry = await this.copies.nodeRead(token, g, fqdn);
    if (!entry) throw new Forbidden('permission denied');
    return entry;
  }

  async create(token: string, name: string, input: SecretData): Promise<PushOutcome> {
    const fqdn = parseFqdn(name);
    const data = this.validated(fqdn, input);
    await this.records.create(token, fqdn, data);
    await this.catalogued(token, fqdn, data.info!.notAfter);
    return { warnings: expiryWarnings(data.info!, this.ttlOf(data)) };
  }

  async update(token: string, name: string, input: SecretData): Promise<PushOutcome> {
    const fqdn = parseFqdn(name);
    const data = this.validated(fqdn, input);
    const current = await this.records.get(token, fqdn);
    // Based on the version just read: a concurrent delete cannot be undone by this write.
    await this.records.replace(token, fqdn, data, current.version, 'the update; retry');
    try {
      await this.copies.fanOut(token, fqdn);
    } finally {
      // Stored either way: the catalog and the schedule follow the secret, not its copies.
      await this.catalogued(token, fqdn, data.info!.notAfter);
      // Pushed over a managed secret: rks stops renewing it.
      if (current.data.managed) await this.managed.reschedule(token, fqdn, null);
    }
    return { warnings: expiryWarnings(data.info!, this.ttlOf(data)) };
  }

  /**
   * Puts the previous version back as a new version (Vault keeps two): a bad push or renewal
   * undone. The version replaced becomes the previous one, so a rollback can be rolled back.
   */
  async rollback(token: string, name: string): Promise<void> {
    const fqdn = parseFqdn(name);
    const current = await this.records.get(token, fqdn);
    // A managed secret: its certificate and key go back (a bad renewal undone), and rks renews from there.
    const pushed = !isManagedStub(current.data);
    const now = pushed ? current : await this.material.read(token, fqdn);
    const previous = now && now.version > 1 ? await (pushed ? this.records : this.material).read(token, fqdn, now.version - 1) : null;
    if (!now || !previous) throw new Conflict(`secret '${fqdn}' has no previous version to roll back to`);
    let back = previous.data;
    // Rolled back to the managed secret a push replaced: its certificate and key are still kept.
    const material = isManagedStub(back) ? await this.material.read(token, fqdn) : (previous as KvEntry<SecretData>);
    if (pushed && !isManagedStub(back) && back.managed) {
      // Stored so before layout 6: served as a pushed secret.
      const { managed: _managed, ...pushed } = back;
      back = pushed;
    }
    const expired = material && this.expiryOf.expired(material.data);
    if (expired) throw new Conflict(`the previous certificate of '${fqdn}' expired at ${expired}`, 'certificate_expired');
    if (pushed) await this.records.replace(token, fqdn, back, now.version, 'the rollback; retry');
    else await this.material.replace(token, fqdn, back as SecretData, now.version, 'the rollback; retry');
    try {
      await this.copies.fanOut(token, fqdn);
    } finally {
      await this.catalogued(token, fqdn, material ? this.expiryOf.notAfter(material.data) : null);
      if (current.data.managed || back.managed) await this.managed.reschedule(token, fqdn, isManagedStub(current.data) ? current.data : back);
    }
  }

  ttlOf(data: SecretData): number {
    return Number(data.meta?.ttl) > 0 ? Number(data.meta!.ttl) : this.defaultTtl;
  }

  /**
   * The secret is stored either way: the catalog is tried twice (an entry it misses is made
   * again by the next listing; one left behind shows what was there until the next change).
   */
  private async catalogued(token: string, fqdn: string, notAfter: string | null): Promise<void> {
    await this.catalog.refresh(token, fqdn).catch(() => this.catalog.refresh(token, fqdn)).catch(() => undefined);
    this.expiry.note(fqdn, notAfter);
  }

  async delete(token: string, name: string): Promise<void> {
    const fqdn = parseFqdn(name);
    await this.records.mustExist(token, fqdn);
    const groups = await this.groupsOf(token, fqdn);
    if (groups.length > 0) {
      throw new Conflict(`secret '${fqdn}' is still associated with ${groups.map((g) => `'${g}'`).join(', ')}`, 'still_associated');
    }
    // A managed secret's spec, schedule and certificates first (a push over one keeps them for a
    // rollback): should what follows fail, the name stays, and deleting it again ends the job.
    await this.managed.forget(token, fqdn);
    await this.records.destroy(token, fqdn);
    // An association that ran between the check and the deletion left a copy: gone too.
    for (const g of await this.groupsOf(token, fqdn)) await this.copies.destroy(token, g, fqdn);
    await this.copies.dropIndex(token, fqdn);
    await this.catalogued(token, fqdn, null);
  }

  async groups(token: string, name: string): Promise<string[]> {
    const fqdn = parseFqdn(name);
    await this.records.mustExist(token, fqdn);
    return this.groupsOf(token, fqdn);
  }

  private groupsOf(token: string, fqdn: string): Promise<string[]> {
    return this.copies.groupsOf(token, fqdn);
  }

  private validated(fqdn: string, input: SecretData): SecretData {
    const tls = validateTlsMaterial(fqdn, input.certificate, input.private_key);
    const data: SecretData = { certificate: tls.certificate, private_key: tls.privateKey };
    if (input.meta?.ttl !== undefined) data.meta = { ttl: input.meta.ttl };
    data.info = certificateFacts(tls.leaf, tls.chain.length);
    return data;
  }
}
