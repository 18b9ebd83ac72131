import { createHash } from 'node:crypto';
import { mapLimited } from '../concurrency';
import { isSecretName } from '../names';
import { NO_CHANGE } from '../vault/kv';
import { kvPath } from '../vault/layout';
import type { KvStore } from '../vault/stores';
import type { SecretGroups } from './copies';
import { CertificateFacts, storedFacts } from './facts';
import type { ManagedSpec } from './managed';
import type { SecretData } from './service';

/**
 * 1,024 shards: at 100,000 secrets each holds about 100 entries (≈ 50 KB). Vault refuses an
 * object of more than 10,000 members by default, which puts the ceiling near ten million.
 */
export const CATALOG_SHARDS = 1024;
const READ_CONCURRENCY = 8;

/** What the inventory shows of one secret: never its key. */
export interface CatalogEntry {
  /** The version of the secret described (a later description never gives way to an earlier one). */
  version: number;
  info?: CertificateFacts;
  /** What is stored is no usable certificate (a classic's placeholder), and why. */
  invalid?: string;
  ttl?: number;
  managed?: ManagedSpec;
  groups: string[];
  /** The version of the secret's group index the groups come from (0: none). */
  groupsVersion: number;
}

interface Shard {
  secrets: Record<string, CatalogEntry>;
}

export const shardOf = (fqdn: string): string => (createHash('sha256').update(fqdn).digest().readUInt16BE(0) % CATALOG_SHARDS).toString(16).padStart(3, '0');

/**
 * The inventory's index: every secret's facts, TTL, managed spec and groups in a fixed number
 * of KV entries, so that a listing reads the shards, not every secret. Every write of a secret
 * or of its groups ends with `refresh`, which describes what Vault holds then; a description
 * lost to a crash is made again by `reconcile` (init, and every listing that rebuilds). Any
 * change writes the serial, whose version tells a cached listing it is out of date.
 */
export class Catalog {
  constructor(private readonly kv: KvStore) {}

  /** Brings `fqdn`'s entry in step with the secret and its group index as Vault holds them now. */
  async refresh(token: string, fqdn: string): Promise<void> {
    if (await this.put(token, fqdn, await this.stored(token, fqdn))) await this.kv.write(kvPath.catalogSerial, { at: Date.now() }, token);
  }

  /** Every entry, by name. */
  async all(token: string): Promise<Map<string, CatalogEntry>> {
    const shards = (await this.kv.list(kvPath.catalogShards, token)).filter((k) => /^[0-9a-f]{3}$/.test(k));
    const out = new Map<string, CatalogEntry>();
    await mapLimited(shards, READ_CONCURRENCY, async (s) => {
      const entry = await this.kv.read<Shard>(kvPath.catalogShard(s), token);
      for (const [fqdn, e] of Object.entries(entry?.data.secrets ?? {})) out.set(fqdn, e);
    });
    return out;
  }

  /** Every certificate's end (seconds since the epoch), by name: what the expiry metrics watch. */
  async expiries(token: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [fqdn, e] of await this.all(token)) if (e.info) out.set(fqdn, Math.floor(Date.parse(e.info.notAfter) / 1000));
    return out;
  }

  /** Changes whenever an entry does: a listing cached at one serial is current while it holds. */
  async serial(token: string): Promise<number> {
    return (await this.kv.read(kvPath.catalogSerial, token))?.version ?? 0;
  }

  /**
   * Makes the catalog describe exactly the secrets stored (`names`: a listing of the mount):
   * the missing described, the leftovers of an interrupted deletion dropped. Answers the
   * entries as they now are. Repairs bring the catalog to what every reader already sees as
   * stored, so they do not write the serial.
   */
  async reconcile(token: string, names: string[], entries?: Map<string, CatalogEntry>): Promise<Map<string, CatalogEntry>> {
    const all = entries ?? (await this.all(token));
    const stored = new Set(names.filter(isSecretName));
    const repair = async (fqdn: string) => {
      const next = await this.stored(token, fqdn);
      await this.put(token, fqdn, next);
      if (next) all.set(fqdn, next);
      else all.delete(fqdn);
    };
    await mapLimited([...stored].filter((n) => !all.has(n)), READ_CONCURRENCY, repair);
    // Checked one by one: a secret created since the listing is never dropped.
    await mapLimited([...all.keys()].filter((n) => !stored.has(n)), READ_CONCURRENCY, repair);
    return all;
  }

  /** The entry that describes what Vault holds of `fqdn` now; null when no secret is stored. */
  async stored(token: string, fqdn: string): Promise<CatalogEntry | null> {
    const [secret, index] = await Promise.all([
      this.kv.read<SecretData>(kvPath.secret(fqdn), token),
      this.kv.read<SecretGroups>(kvPath.secretGroups(fqdn), token),
    ]);
    if (!secret) return null;
    return { ...describe(secret.data), version: secret.version, groups: [...(index?.data.groups ?? [])].sort(), groupsVersion: index?.version ?? 0 };
  }

  /** Stores `next` unless what is there describes a later version; answers whether it changed. */
  private async put(token: string, fqdn: string, next: CatalogEntry | null): Promise<boolean> {
    let changed = false;
    await this.kv.update<Shard>(kvPath.catalogShard(shardOf(fqdn)), token, (shard) => {
      const secrets = { ...(shard?.secrets ?? {}) };
      const old = secrets[fqdn];
      changed = false;
      if (!next) {
        if (!old) return NO_CHANGE;
        delete secrets[fqdn];
      } else {
        const facts = !old || next.version >= old.version ? next : old;
        const groups = !old || next.groupsVersion >= old.groupsVersion ? next : old;
        const merged: CatalogEntry = { ...facts, groups: groups.groups, groupsVersion: groups.groupsVersion };
        if (old && JSON.stringify(old) === JSON.stringify(merged)) return NO_CHANGE;
        secrets[fqdn] = merged;
      }
      changed = true;
      return { secrets };
    });
    return changed;
  }
}

/** The facts of what is stored (parsed for secrets stored before facts were kept). */
function describe(data: SecretData): Omit<CatalogEntry, 'version' | 'groups' | 'groupsVersion'> {
  const info = data.info ?? storedFacts(data.certificate);
  const ttl = Number(data.meta?.ttl) > 0 ? { ttl: Number(data.meta!.ttl) } : {};
  if ('invalid' in info) return { invalid: info.invalid, ...ttl };
  return { info, ...ttl, ...(data.managed ? { managed: data.managed } : {}) };
}
