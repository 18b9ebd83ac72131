import { Locked, NotFound } from '../errors';
import { isSecretName } from '../names';
import { isDenied } from '../vault/client';
import { kvPath } from '../vault/layout';
import { CasMismatch, KvEntry, KvStore, NO_CHANGE } from '../vault/stores';
import { ChangeLog } from './changes';
import { isManagedStub, ManagedMaterial, SecretCopy, SecretData, SecretGroups, SecretRecords } from '../records/secrets';


/** Rounds of read, compare and write before a copy that keeps changing is given up on. */
const SYNC_ROUNDS = 20;

/**
 * What a secret's copies are made of: its certificate and key, in the secret for a pushed one,
 * at `managed/secrets/<fqdn>` for a managed one (null while it waits for its first certificate).
 */
export interface CopySource {
  managed: boolean;
  entry: KvEntry<SecretData> | null;
}

/**
 * Whose view a sync has: an administrator's sees the secret and both folders of copies; rks's
 * own identity sees only managed secrets and their copies, and may update a copy but never
 * make or remove one.
 */
export type CopyView = 'admin' | 'managed';

const copyPath = (g: string, fqdn: string, managed: boolean) => (managed ? kvPath.groupManagedCopy(g, fqdn) : kvPath.groupCopy(g, fqdn));

/**
 * The copies that make a group's associations readable by its nodes, and the index of which
 * groups hold a copy of a secret. Writers of a secret fan out to the groups in the index;
 * association creates a copy. Both end by reading the secret again, so whichever writes last
 * leaves the copy at the secret's latest version, whatever the interleaving between instances.
 * A managed secret's copies are in the group's `managed/` folder, a pushed one's in `secrets/`.
 */
export class Copies {
  constructor(
    private readonly kv: KvStore,
    private readonly records: Pick<SecretRecords, 'read'>,
    private readonly material: Pick<ManagedMaterial, 'read'>,
    private readonly changes: ChangeLog,
  ) {}

  /** What the copies of `fqdn` are made of now; null for no such secret. */
  async source(token: string, fqdn: string, view: CopyView = 'admin'): Promise<CopySource | null> {
    if (view === 'managed') return { managed: true, entry: await this.material.read(token, fqdn) };
    const head = await this.records.read(token, fqdn);
    if (!head) return null;
    if (!isManagedStub(head.data)) return { managed: false, entry: head as KvEntry<SecretData> };
    return { managed: true, entry: await this.material.read(token, fqdn) };
  }

  /**
   * Makes `g`'s copy of `fqdn` the secret's current version. With `create` (association) a
   * missing copy is made; otherwise a missing copy means the group lost the secret meanwhile,
   * and stays missing. Answers whether a copy now exists.
   */
  async sync(token: string, g: string, fqdn: string, create: boolean, view: CopyView = 'admin'): Promise<boolean> {
    for (let round = 0; round < SYNC_ROUNDS; round++) {
      const [src, pushed, managed] = await Promise.all([
        this.source(token, fqdn, view),
        view === 'admin' ? this.kv.read<SecretCopy>(kvPath.groupCopy(g, fqdn), token) : null,
        this.kv.read<SecretCopy>(kvPath.groupManagedCopy(g, fqdn), token),
      ]);
      const held = pushed ?? managed;
      if (!held && !create) return false;
      if (!src?.entry) {
        if (view === 'managed') return Boolean(managed);
        // Deleted meanwhile (a deletion that raced an association): no copy may outlive it.
        await this.destroy(token, g, fqdn);
        if (create) throw new NotFound(src ? `secret '${fqdn}' has no certificate yet: associate it once rks obtained its first` : `secret '${fqdn}' not found`);
        return false;
      }
      const [copy, other] = src.managed ? [managed, pushed] : [pushed, managed];
      // A copy that says it moved holds what a managed secret was: never current for a pushed one.
      const current = copy && copy.data.source === src.entry.version && !copy.data.moved;
      if (current && !other) return true;
      if (!copy && other && !create) {
        // Pushed over a managed secret, or rolled back to one: the copy moves to the other folder.
        return this.move(token, g, fqdn, src, other.version);
      }
      const replaced = Boolean(copy && !current);
      if (!copy || replaced) await this.put(token, g, fqdn, src, copy?.version ?? 0);
      if (other) await this.retire(token, g, fqdn, src, other.version);
      if (replaced || other) await this.keyReplaced(token, g, fqdn);
      // Made once: from now on a missing copy is a dissociation that came in between.
      create = false;
    }
    throw new Locked(`the copies of '${fqdn}' keep changing; retry`);
  }

  /**
   * The copy made in the folder of what the secret is now, the one before removed; then, since
   * a dissociation may have removed both in between, kept only while the index names the group.
   */
  private async move(token: string, g: string, fqdn: string, src: CopySource, other: number): Promise<boolean> {
    await this.put(token, g, fqdn, src, 0);
    await this.retire(token, g, fqdn, src, other);
    await this.keyReplaced(token, g, fqdn);
    if ((await this.groupsOf(token, fqdn)).includes(g)) return true;
    await this.kv.destroy(copyPath(g, fqdn, src.managed), token);
    return false;
  }

  /**
   * Writes `g`'s copy of `src` unless the copy is no longer at version `cas` (someone else
   * wrote it first: a sync that follows reads what stands).
   */
  async put(token: string, g: string, fqdn: string, src: CopySource, cas: number): Promise<void> {
    try {
      await this.kv.write<SecretCopy>(copyPath(g, fqdn, src.managed), this.copyOf(src), token, cas);
    } catch (err) {
      if (!(err instanceof CasMismatch)) throw err;
    }
  }

  /**
   * The copy in the other folder than `src`'s goes. Nodes read the pushed folder first: leaving
   * it, that copy takes the new material before it goes, so that a removal that fails leaves
   * what the secret is now there, never the key it replaced (the next change of the secret by
   * an administrator removes it). `version`: that copy's, as read (a copy a dissociation removed
   * meanwhile is not written again).
   */
  private async retire(token: string, g: string, fqdn: string, src: CopySource, version: number): Promise<void> {
    if (src.managed) {
      await this.kv.write<SecretCopy>(copyPath(g, fqdn, false), { ...this.copyOf(src), moved: true }, token, version).catch((err) => {
        if (!(err instanceof CasMismatch)) throw err;
      });
    }
    await this.kv.destroy(copyPath(g, fqdn, !src.managed), token);
  }

  /**
   * Tells the group's edges that the key of `fqdn` changed (see ChangeLog). The copy stands
   * whatever happens here: should Vault refuse it (an rks identity from before the grant: init
   * says it is stale), edges learn of the key when theirs ends, as they did before.
   */
  private async keyReplaced(token: string, g: string, fqdn: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.changes.record(token, g, [[fqdn, 'k']]);
      } catch (err) {
        if (isDenied(err)) return;
        // Vault failing for a moment is tried again; failing on, the call fails and says so.
        if (attempt === 3) throw err;
      }
    }
  }

  private copyOf(src: CopySource): SecretCopy {
    const { managed: _managed, ...data } = src.entry!.data;
    return { ...data, source: src.entry!.version };
  }

  /** Whether `g` holds a copy of `fqdn`, in either folder. */
  async exists(token: string, g: string, fqdn: string): Promise<boolean> {
    const [pushed, managed] = await Promise.all([this.kv.exists(kvPath.groupCopy(g, fqdn), token), this.kv.exists(kvPath.groupManagedCopy(g, fqdn), token)]);
    return pushed || managed;
  }

  /**
   * What a node reads with its token: its group's copy of `fqdn` (null: the group holds none).
   * A node policy from before layout 4 names each secret instead of the copies: then the secret
   * itself, for as long as init has not moved the group; one from before layout 6 does not
   * grant the managed folder.
   */
  async nodeRead(token: string, g: string, fqdn: string): Promise<KvEntry<SecretData> | null> {
    const copy = () => this.kv.read<SecretData>(kvPath.groupCopy(g, fqdn), token);
    let entry: KvEntry<SecretData> | null;
    try {
      entry = await copy();
    } catch (err) {
      if (!isDenied(err)) throw err;
      try {
        entry = (await this.records.read(token, fqdn)) as KvEntry<SecretData> | null;
      } catch (again) {
        // The group moved to copies between the two reads (a policy only ever moves forward).
        if (!isDenied(again)) throw again;
        entry = await copy();
      }
    }
    // A managed secret's copy, in the folder beside.
    const managed = () =>
      this.kv.read<SecretData>(kvPath.groupManagedCopy(g, fqdn), token).catch((err) => {
        if (isDenied(err)) return null;
        throw err;
      });
    if (!entry) return managed();
    if ((entry.data as SecretCopy).moved) return (await managed()) ?? entry;
    return entry;
  }

  /** `g`'s copy of `fqdn` goes, whichever folder it is in. */
  async destroy(token: string, g: string, fqdn: string): Promise<void> {
    await Promise.all([this.kv.destroy(kvPath.groupCopy(g, fqdn), token), this.kv.destroy(kvPath.groupManagedCopy(g, fqdn), token)]);
  }

  /** After the secret changed: every group's copy brought to its new version. */
  async fanOut(token: string, fqdn: string, view: CopyView = 'admin'): Promise<void> {
    for (const g of await this.groupsOf(token, fqdn)) await this.sync(token, g, fqdn, false, view);
  }

  /**
   * The secrets associated with group `g`, sorted: its copies, or, for a group still in the
   * layout before 4, its list.
   */
  async names(token: string, g: string): Promise<string[]> {
    const copies = await this.listed(token, g);
    if (copies.length || (await this.kv.exists(kvPath.groupSerial(g), token))) return copies;
    const list = await this.kv.read<{ secrets: unknown[] }>(kvPath.groupSecrets(g), token);
    return (list?.data.secrets ?? []).filter((s): s is string => typeof s === 'string' && isSecretName(s)).sort();
  }

  /** The names of `g`'s copies in both folders, sorted (with the caller's token: a node's lists its own group's). */
  async listed(token: string, g: string): Promise<string[]> {
    const [pushed, managed] = await Promise.all([
      this.kv.list(kvPath.groupCopies(g), token),
      // A node policy from before layout 6 does not grant the managed folder (init rewrites it).
      this.kv.list(kvPath.groupManagedCopies(g), token).catch((err) => {
        if (isDenied(err)) return [];
        throw err;
      }),
    ]);
    return [...new Set([...pushed, ...managed].filter(isSecretName))].sort();
  }

  /** The secret's index of groups goes (the secret is deleted, and its copies with it). */
  async dropIndex(token: string, fqdn: string): Promise<void> {
    await this.kv.destroy(kvPath.secretGroups(fqdn), token);
  }

  async groupsOf(token: string, fqdn: string): Promise<string[]> {
    const index = await this.indexEntry(token, fqdn);
    return [...(index?.data.groups ?? [])].sort();
  }

  /** The secret's index of groups as stored (its version is what `index` may be given as `seen`). */
  indexEntry(token: string, fqdn: string): Promise<KvEntry<SecretGroups> | null> {
    return this.kv.read<SecretGroups>(kvPath.secretGroups(fqdn), token);
  }

  /**
   * Adds or removes `g` in the secret's index entry; answers whether it was there. `seen`: the
   * entry as the caller read it just before.
   */
  async index(token: string, fqdn: string, g: string, member: boolean, seen?: KvEntry<SecretGroups> | null): Promise<boolean> {
    let had = false;
    await this.kv.update<SecretGroups>(
      kvPath.secretGroups(fqdn),
      token,
      (index) => {
        const groups = index?.groups ?? [];
        had = groups.includes(g);
        if (had === member) return NO_CHANGE;
        return { groups: member ? [...groups, g] : groups.filter((x) => x !== g) };
      },
      { seen },
    );
    return had;
  }
}
