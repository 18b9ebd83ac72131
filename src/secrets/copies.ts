import { Locked, NotFound } from '../errors';
import { isSecretName } from '../names';
import { kvPath } from '../vault/layout';
import { CasMismatch, KvEntry, KvStore, NO_CHANGE } from '../vault/stores';
import type { SecretCopy, SecretData, SecretGroups } from '../records/secrets';


/** Rounds of read, compare and write before a copy that keeps changing is given up on. */
const SYNC_ROUNDS = 20;

/**
 * The copies that make a group's associations readable by its nodes, and the index of which
 * groups hold a copy of a secret. Writers of a secret fan out to the groups in the index;
 * association creates a copy. Both end by reading the secret again, so whichever writes last
 * leaves the copy at the secret's latest version, whatever the interleaving between instances.
 */
export class Copies {
  constructor(private readonly kv: KvStore) {}

  /**
   * Makes `g`'s copy of `fqdn` the secret's current version. With `create` (association) a
   * missing copy is made; otherwise a missing copy means the group lost the secret meanwhile,
   * and stays missing. Answers whether a copy now exists.
   */
  async sync(token: string, g: string, fqdn: string, create: boolean): Promise<boolean> {
    for (let round = 0; round < SYNC_ROUNDS; round++) {
      const [secret, copy] = await Promise.all([
        this.kv.read<SecretData>(kvPath.secret(fqdn), token),
        this.kv.read<SecretCopy>(kvPath.groupCopy(g, fqdn), token),
      ]);
      if (!copy && !create) return false;
      if (!secret) {
        // Deleted meanwhile (a deletion that raced an association): no copy may outlive it.
        if (copy) await this.kv.destroy(kvPath.groupCopy(g, fqdn), token);
        if (create) throw new NotFound(`secret '${fqdn}' not found`);
        return false;
      }
      if (copy && copy.data.source === secret.version) return true;
      await this.put(token, g, fqdn, secret, copy?.version ?? 0);
      // Made once: from now on a missing copy is a dissociation that came in between.
      create = false;
    }
    throw new Locked(`the copies of '${fqdn}' keep changing; retry`);
  }

  /**
   * Writes `g`'s copy of `secret` unless the copy is no longer at version `cas` (someone else
   * wrote it first: a sync that follows reads what stands).
   */
  async put(token: string, g: string, fqdn: string, secret: KvEntry<SecretData>, cas: number): Promise<void> {
    const { managed: _managed, ...data } = secret.data;
    try {
      await this.kv.write<SecretCopy>(kvPath.groupCopy(g, fqdn), { ...data, source: secret.version }, token, cas);
    } catch (err) {
      if (!(err instanceof CasMismatch)) throw err;
    }
  }

  /** After the secret changed: every group's copy brought to its new version. */
  async fanOut(token: string, fqdn: string): Promise<void> {
    for (const g of await this.groupsOf(token, fqdn)) await this.sync(token, g, fqdn, false);
  }

  /**
   * The secrets associated with group `g`, sorted: its copies, or, for a group still in the
   * layout before 4, its list.
   */
  async names(token: string, g: string): Promise<string[]> {
    const copies = (await this.kv.list(kvPath.groupCopies(g), token)).filter(isSecretName);
    if (copies.length || (await this.kv.exists(kvPath.groupSerial(g), token))) return copies.sort();
    const list = await this.kv.read<{ secrets: unknown[] }>(kvPath.groupSecrets(g), token);
    return (list?.data.secrets ?? []).filter((s): s is string => typeof s === 'string' && isSecretName(s)).sort();
  }

  async groupsOf(token: string, fqdn: string): Promise<string[]> {
    const index = await this.kv.read<SecretGroups>(kvPath.secretGroups(fqdn), token);
    return [...(index?.data.groups ?? [])].sort();
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
