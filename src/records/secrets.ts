/** The records rks keeps of a secret in Vault: the secret, its groups' copies, its renewal. */
import { Conflict, NotFound, alreadyExists } from '../errors';
import { kvPath } from '../vault/layout';
import type { KvEntry, KvStore } from '../vault/stores';

/**
 * What the inventory shows of a secret's certificate (its leaf), kept beside the secret in Vault
 * at push time so that listings and expiry checks never parse certificates again.
 */
export interface CertificateFacts {
  subject: string;
  sans: string[];
  issuer: string;
  /** ISO 8601. */
  notBefore: string;
  notAfter: string;
  /** "EC P-256", "RSA 3072", "Ed25519", … */
  keyType: string;
  sha256Fingerprint: string;
  /** Certificates in the stored chain, the leaf included. */
  chainLength: number;
}

/** A secret as stored in Vault (`rks/data/<fqdn>`); the API carries the first three under `data`. */
export interface SecretData {
  certificate: string;
  private_key: string;
  meta?: { ttl?: number };
  /** The certificate's facts, kept at push time (absent on secrets stored by older versions). */
  info?: CertificateFacts;
  /** How rks makes and renews it, for a managed secret. */
  managed?: ManagedSpec;
}

/**
 * What `rks/data/<fqdn>` holds for a managed secret: what the administrator asked for. Its
 * certificate and key are at `rks/data/managed/secrets/<fqdn>` (a `SecretData` with the same
 * spec), which rks's identity renews; a push over it replaces this entry and a rollback puts it
 * back.
 */
export interface ManagedStub {
  managed: ManagedSpec;
  meta?: { ttl?: number };
}

export type StoredSecret = SecretData | ManagedStub;

/** The issuer name managed secrets use for rks's own CA; no ACME issuer may take it. */
export const RKS_CA = 'rks-ca';

/**
 * What rks's identity renews a managed secret to, at `rks/data/managed/spec/<fqdn>`: the stub's
 * spec and TTL, written by the administrator's calls alone (rks's identity may only read it), so
 * that what rks orders is what an administrator asked for, whatever else rks's identity writes.
 */
export interface ManagedSpecRecord {
  spec: ManagedSpec;
  ttl?: number;
}

/** Whether `rks/data/<fqdn>` holds a managed secret's stub (a pushed secret holds its certificate). */
export const isManagedStub = (d: StoredSecret): d is ManagedStub => typeof (d as SecretData).certificate !== 'string' && typeof d.managed === 'object' && d.managed !== null;

/**
 * A group's copy of a secret, at `rks/data/groups/<g>/secrets/<fqdn>` (`managed/<fqdn>` for a
 * managed secret): what its nodes read, with the version of the secret (of its certificate and
 * key, for a managed one) it copies. The managed spec stays with the secret.
 */
export interface SecretCopy extends Omit<SecretData, 'managed'> {
  source: number;
  /**
   * Left in the pushed folder by a move to the managed one that could not remove it: it holds
   * what the secret was at the move, and readers go to the managed copy beside it.
   */
  moved?: true;
}

/** The reverse index, at `rks/data/index/secret-groups/<fqdn>`: the groups a secret is associated with. */
export interface SecretGroups {
  groups: string[];
}

export type ManagedKeyType = 'ec-p256' | 'rsa-3072';

/** How a managed secret is made: in its stub (so it travels with rollbacks) and its spec record. */
export interface ManagedSpec {
  /** 'rks-ca' (Vault's PKI engine), or the name of an ACME issuer. */
  issuer: string;
  sans: string[];
  keyType: ManagedKeyType;
  /** Seconds each certificate is valid (rks's CA; an ACME CA decides for itself). */
  lifetime?: number;
  /** Seconds before its end that a certificate is replaced (default: at two thirds of its life). */
  renewBefore?: number;
}

/** A managed secret's place in the schedule. */
export interface RenewalState {
  /** When the next attempt is due (seconds since the epoch). */
  renewAt: number;
  /** Failed attempts since the last success. */
  failures: number;
  lastAttempt?: string;
  lastError?: string;
  /** When to ask the ACME CA for its renewal window again (RFC 9773), seconds since the epoch. */
  ariAt?: number;
  /** An instance is obtaining a certificate now (claimed until `renewAt`). */
  inProgress?: true;
  /** Which attempt holds the claim: only it may record the outcome. */
  claim?: string;
  /** Waiting for its first certificate (what to make is in its spec record, never here). */
  pending?: true;
  /**
   * The certificate stored is new, but some groups' copies still hold the one before: the next
   * attempt brings the copies up to date and orders nothing (a CA's rate limits stay untouched).
   */
  copiesBehind?: true;
  /** Waiting for a slot of its issuer's order budget (renewAt is the slot): not a failure. */
  queued?: true;
}

/** What `rks/data/<fqdn>` answers when there is no secret of that name. */
export const secretNotFound = (fqdn: string) => new NotFound(`secret '${fqdn}' not found`);

/**
 * The secret's record at `rks/data/<fqdn>` (a pushed secret, or a managed secret's stub): read,
 * written, checked and destroyed here alone, with its answers when it is missing or taken.
 */
export class SecretRecords {
  constructor(private readonly kv: KvStore) {}

  /** As stored (`version`: an older one), or null. */
  read(token: string, fqdn: string, version?: number): Promise<KvEntry<StoredSecret> | null> {
    return this.kv.read<StoredSecret>(kvPath.secret(fqdn), token, version);
  }

  /** As stored, or 404. */
  async get(token: string, fqdn: string): Promise<KvEntry<StoredSecret>> {
    const entry = await this.read(token, fqdn);
    if (!entry) throw secretNotFound(fqdn);
    return entry;
  }

  exists(token: string, fqdn: string): Promise<boolean> {
    return this.kv.exists(kvPath.secret(fqdn), token);
  }

  /** 404 unless it exists. */
  async mustExist(token: string, fqdn: string): Promise<void> {
    if (!(await this.exists(token, fqdn))) throw secretNotFound(fqdn);
  }

  /** 409 `already_exists` if the name is taken. */
  async mustBeFree(token: string, fqdn: string): Promise<void> {
    if (await this.exists(token, fqdn)) throw taken(fqdn);
  }

  /** A new secret of that name; 409 `already_exists` if the name is taken. */
  async create(token: string, fqdn: string, data: StoredSecret): Promise<void> {
    await this.kv.writeAt(kvPath.secret(fqdn), data, token, 0, () => taken(fqdn));
  }

  /** Replaces `version` (0: none yet), the one read before; 409 naming `during` if it changed meanwhile. */
  replace(token: string, fqdn: string, data: StoredSecret, version: number, during: string): Promise<number> {
    return this.kv.writeAt(kvPath.secret(fqdn), data, token, version, () => new Conflict(`secret '${fqdn}' changed during ${during}`));
  }

  /** Every version: an old private key must not outlive its deletion. */
  destroy(token: string, fqdn: string): Promise<void> {
    return this.kv.destroy(kvPath.secret(fqdn), token);
  }
}

/**
 * A managed secret's certificate and key at `rks/data/managed/secrets/<fqdn>` (two versions kept,
 * for a rollback), which rks's identity renews: read, written and destroyed here alone.
 */
export class ManagedMaterial {
  constructor(private readonly kv: KvStore) {}

  read(token: string, fqdn: string, version?: number): Promise<KvEntry<SecretData> | null> {
    return this.kv.read<SecretData>(kvPath.managedSecret(fqdn), token, version);
  }

  /** The current version (0: none), without reading the key. */
  version(token: string, fqdn: string): Promise<number> {
    return this.kv.version(kvPath.managedSecret(fqdn), token);
  }

  /** `cas`: only over that version (0: only if there is none). */
  write(token: string, fqdn: string, data: SecretData, cas?: number): Promise<number> {
    return this.kv.write(kvPath.managedSecret(fqdn), data, token, cas);
  }

  /** Replaces `version`, the one read before; 409 naming `during` if it changed meanwhile. */
  replace(token: string, fqdn: string, data: SecretData, version: number, during: string): Promise<number> {
    return this.kv.writeAt(kvPath.managedSecret(fqdn), data, token, version, () => new Conflict(`secret '${fqdn}' changed during ${during}`));
  }

  destroy(token: string, fqdn: string): Promise<void> {
    return this.kv.destroy(kvPath.managedSecret(fqdn), token);
  }
}

const taken = (fqdn: string) => alreadyExists(`secret '${fqdn}'`);
