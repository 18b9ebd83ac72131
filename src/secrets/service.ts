import { Conflict, Forbidden, Gone, NotFound } from '../errors';
import { parseFqdn } from '../names';
import { isVaultError } from '../vault/client';
import type { KvEntry, KvStore } from '../vault/stores';
import { kvPath } from '../vault/layout';
import { Copies } from './copies';
import { Catalog } from './catalog';
import { certificateFacts, expiryWarnings, storedFacts } from './facts';
import type { ExpiryNotes } from './expiry-watch';
import type { Readers } from './readers';
import { validateTlsMaterial } from './tls';
import { isManagedStub, SecretCopy, SecretData, StoredSecret } from '../records/secrets';


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

export interface Secret {
  data: { certificate: string; private_key: string; meta: { ttl: number } };
}

export interface ManagedHooks {
  /** After a push over a managed secret or a rollback: renewed or not, as `head` (what `<fqdn>` holds now) says. */
  reschedule(token: string, fqdn: string, head: StoredSecret | null): Promise<void>;
  /** The secret was deleted: its certificates, its state and its place in the schedule go. */
  forget(token: string, fqdn: string): Promise<void>;
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
  private readonly catalog: Catalog;
  private readonly copies: Copies;
  private readonly managed: ManagedHooks;
  private readonly readers: Pick<Readers, 'groupOf'>;
  private readonly expiry: ExpiryNotes;
  readonly expiryOf = new ExpiryOf();

  constructor(
    private readonly kv: KvStore,
    private readonly defaultTtl: number,
    parts: SecretServiceParts,
  ) {
    ({ managed: this.managed, readers: this.readers, expiry: this.expiry } = parts);
    this.catalog = new Catalog(kv);
    this.copies = new Copies(kv);
  }

  /**
   * The hot path: exactly one Vault read with the caller's token (and, the first time rks sees
   * a token, its lookup). A node reads its group's copy; Vault refuses any other. An expired
   * certificate is not handed out (410): a TLS client would refuse it anyway, and the edge
   * learns why.
   */
  async get(token: string, name: string): Promise<Secret> {
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
    if (!src) throw new NotFound(`secret '${fqdn}' not found`);
    if (!src.entry) throw new NotFound(`secret '${fqdn}' has no certificate yet: rks is obtaining its first`);
    return src.entry;
  }

  /**
   * A node's read: its group's copy, or nothing for a secret the group does not hold (403, as
   * Vault answers for any path a policy does not grant). A node policy from before layout 4
   * names each secret instead of the copies: then the secret itself, for as long as init has
   * not moved the group.
   */
  private async nodeRead(token: string, g: string, fqdn: string): Promise<KvEntry<SecretData>> {
    const copy = () => this.kv.read<SecretData>(kvPath.groupCopy(g, fqdn), token);
    let entry: KvEntry<SecretData> | null;
    try {
      entry = await copy();
    } catch (err) {
      if (!isVaultError(err, 403)) throw err;
      try {
        entry = await this.kv.read<SecretData>(kvPath.secret(fqdn), token);
      } catch (again) {
        // The group moved to copies between the two reads (a policy only ever moves forward).
        if (!isVaultError(again, 403)) throw again;
        entry = await copy();
      }
    }
    // A managed secret's copy, in the folder beside (a node policy from before layout 6 does not grant it).
    const managed = () =>
      this.kv.read<SecretData>(kvPath.groupManagedCopy(g, fqdn), token).catch((err) => {
        if (isVaultError(err, 403)) return null;
        throw err;
      });
    if (!entry) entry = await managed();
    else if ((entry.data as SecretCopy).moved) entry = (await managed()) ?? entry;
    if (!entry) throw new Forbidden('permission denied');
    return entry;
  }

  async create(token: string, name: string, input: SecretData): Promise<PushOutcome> {
    const fqdn = parseFqdn(name);
    const data = this.validated(fqdn, input);
    await this.kv.writeAt(kvPath.secret(fqdn), data, token, 0, () => new Conflict(`secret '${fqdn}' already exists`, 'already_exists'));
    await this.catalogued(token, fqdn, data.info!.notAfter);
    return { warnings: expiryWarnings(data.info!, this.ttlOf(data)) };
  }

  async update(token: string, name: string, input: SecretData): Promise<PushOutcome> {
    const fqdn = parseFqdn(name);
    const data = this.validated(fqdn, input);
    const current = await this.kv.read<StoredSecret>(kvPath.secret(fqdn), token);
    if (!current) throw new NotFound(`secret '${fqdn}' not found`);
    // Based on the version just read: a concurrent delete cannot be undone by this write.
    await this.kv.writeAt(kvPath.secret(fqdn), data, token, current.version, () => new Conflict(`secret '${fqdn}' changed during the update; retry`));
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
    const current = await this.kv.read<StoredSecret>(kvPath.secret(fqdn), token);
    if (!current) throw new NotFound(`secret '${fqdn}' not found`);
    // A managed secret: its certificate and key go back (a bad renewal undone), and rks renews from there.
    const path = isManagedStub(current.data) ? kvPath.managedSecret(fqdn) : kvPath.secret(fqdn);
    const now = isManagedStub(current.data) ? await this.kv.read<SecretData>(path, token) : (current as KvEntry<StoredSecret>);
    const previous = now && now.version > 1 ? await this.kv.read<StoredSecret>(path, token, now.version - 1) : null;
    if (!now || !previous) throw new Conflict(`secret '${fqdn}' has no previous version to roll back to`);
    let back = previous.data;
    // Rolled back to the managed secret a push replaced: its certificate and key are still kept.
    const material = isManagedStub(back) ? await this.kv.read<SecretData>(kvPath.managedSecret(fqdn), token) : (previous as KvEntry<SecretData>);
    if (path === kvPath.secret(fqdn) && !isManagedStub(back) && back.managed) {
      // Stored so before layout 6: served as a pushed secret.
      const { managed: _managed, ...pushed } = back;
      back = pushed;
    }
    const expired = material && this.expiryOf.expired(material.data);
    if (expired) throw new Conflict(`the previous certificate of '${fqdn}' expired at ${expired}`, 'certificate_expired');
    await this.kv.writeAt(path, back, token, now.version, () => new Conflict(`secret '${fqdn}' changed during the rollback; retry`));
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
    await this.mustExist(token, fqdn);
    const groups = await this.groupsOf(token, fqdn);
    if (groups.length > 0) {
      throw new Conflict(`secret '${fqdn}' is still associated with ${groups.map((g) => `'${g}'`).join(', ')}`, 'still_associated');
    }
    // A managed secret's spec, schedule and certificates first (a push over one keeps them for a
    // rollback): should what follows fail, the name stays, and deleting it again ends the job.
    await this.managed.forget(token, fqdn);
    // Destroy every version: an old private key must not outlive its deletion.
    await this.kv.destroy(kvPath.secret(fqdn), token);
    // An association that ran between the check and the deletion left a copy: gone too.
    for (const g of await this.groupsOf(token, fqdn)) await this.copies.destroy(token, g, fqdn);
    await this.kv.destroy(kvPath.secretGroups(fqdn), token);
    await this.catalogued(token, fqdn, null);
  }

  async groups(token: string, name: string): Promise<string[]> {
    const fqdn = parseFqdn(name);
    await this.mustExist(token, fqdn);
    return this.groupsOf(token, fqdn);
  }

  private groupsOf(token: string, fqdn: string): Promise<string[]> {
    return this.copies.groupsOf(token, fqdn);
  }

  private async mustExist(token: string, fqdn: string): Promise<void> {
    if (!(await this.kv.exists(kvPath.secret(fqdn), token))) {
      throw new NotFound(`secret '${fqdn}' not found`);
    }
  }

  private validated(fqdn: string, input: SecretData): SecretData {
    const tls = validateTlsMaterial(fqdn, input.certificate, input.private_key);
    const data: SecretData = { certificate: tls.certificate, private_key: tls.privateKey };
    if (input.meta?.ttl !== undefined) data.meta = { ttl: input.meta.ttl };
    data.info = certificateFacts(tls.leaf, tls.chain.length);
    return data;
  }
}
