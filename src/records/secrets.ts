/** The records rks keeps of a secret in Vault: the secret, its groups' copies, its renewal. */

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
