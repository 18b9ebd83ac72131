import { VaultClient, isVaultError } from './client';
import { PKI_MOUNT } from './layout';
import type { PkiRole, PkiStore, SignedCertificate } from './stores';


/** Vault's PKI secrets engine at rks's mount: the CA whose key never leaves Vault. */
export class Pki implements PkiStore {
  constructor(private readonly vault: VaultClient) {}

  /** The CA certificate (PEM), or null while there is none. Unauthenticated in Vault. */
  async caPem(): Promise<string | null> {
    try {
      const res = await this.vault.call('GET', `${PKI_MOUNT}/cert/ca`, { token: null, operation: 'pki.ca' });
      const pem = res?.data?.certificate as string | undefined;
      return pem ? `${pem.trim()}\n` : null;
    } catch (err) {
      if (isVaultError(err, 404) || isVaultError(err, 400)) return null;
      throw err;
    }
  }

  async tune(maxLeaseTtl: string, token: string): Promise<void> {
    await this.vault.call('POST', `sys/mounts/${PKI_MOUNT}/tune`, { token, operation: 'pki.tune', body: { max_lease_ttl: maxLeaseTtl } });
  }

  /** Generates the root CA inside Vault: its key is never exported. */
  async generateRoot(commonName: string, ttl: string, token: string): Promise<void> {
    await this.vault.call('POST', `${PKI_MOUNT}/root/generate/internal`, {
      token,
      operation: 'pki.generate-root',
      body: { common_name: commonName, key_type: 'ec', key_bits: 384, ttl, issuer_name: 'rks-root' },
    });
  }

  /** Imports a CA certificate and its key (a PEM bundle). */
  async importCa(pemBundle: string, token: string): Promise<void> {
    await this.vault.call('POST', `${PKI_MOUNT}/config/ca`, { token, operation: 'pki.import-ca', body: { pem_bundle: pemBundle } });
  }

  async writeRole(name: string, role: PkiRole, token: string): Promise<void> {
    await this.vault.call('POST', `${PKI_MOUNT}/roles/${name}`, {
      token,
      operation: 'pki.write-role',
      body: {
        ...role,
        key_type: 'any',
        allow_any_name: true,
        enforce_hostnames: false,
        allow_ip_sans: true,
        allow_localhost: true,
        allow_wildcard_certificates: false,
        require_cn: false,
        use_csr_common_name: true,
        use_csr_sans: true,
        // Nothing to keep: rks revokes no leaf by serial, and a PSK holder signing in a loop
        // must not grow Vault's storage.
        no_store: true,
      },
    });
  }

  /** A role that signs server certificates for exactly `names` (a managed secret's), at most `maxTtlSeconds`. */
  async writeNamesRole(name: string, names: string[], maxTtlSeconds: number, token: string): Promise<void> {
    const wildcard = names.some((n) => n.startsWith('*.'));
    await this.vault.call('POST', `${PKI_MOUNT}/roles/${name}`, {
      token,
      operation: 'pki.write-role',
      idempotent: true,
      body: {
        allowed_domains: names,
        allow_bare_domains: true,
        allow_subdomains: false,
        allow_glob_domains: wildcard,
        allow_wildcard_certificates: wildcard,
        allow_localhost: false,
        allow_ip_sans: false,
        enforce_hostnames: true,
        server_flag: true,
        client_flag: false,
        key_type: 'any',
        use_csr_common_name: true,
        use_csr_sans: true,
        max_ttl: `${maxTtlSeconds}s`,
        // Renewed often: no copy of every certificate kept in Vault's storage.
        no_store: true,
      },
    });
  }

  async sign(role: string, csr: string, ttlSeconds: number, token: string): Promise<SignedCertificate> {
    const res = await this.vault.call('POST', `${PKI_MOUNT}/sign/${role}`, {
      token,
      operation: 'pki.sign',
      body: { csr, ttl: `${ttlSeconds}s`, format: 'pem' },
    });
    return {
      certificate: `${String(res.data.certificate).trim()}\n`,
      issuingCa: `${String(res.data.issuing_ca).trim()}\n`,
      expiration: Number(res.data.expiration),
    };
  }
}
