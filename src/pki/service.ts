import { X509Certificate } from 'node:crypto';
import { BadRequest, ServiceUnavailable } from '../errors';
import { isRefused } from '../vault/client';
import { PKI_CLIENT_ROLE, PKI_SERVER_ROLE } from '../vault/layout';
import type { CertificateAuthority, Session } from '../vault/stores';
import { checkCsr, newKeyAndCsr } from './csr';
import { sha256Fingerprint } from './psk';

export interface IssuedPair {
  cert: string;
  key: string;
  /** The certificate followed by its issuer, as a server sends it. */
  chain: string;
  notAfter: Date;
}

const CA_CACHE_MS = 60_000;

/** rks's CA in Vault: its certificate, signing CSRs, and rks's own server certificate. */
export class PkiService {
  private ca?: { pem: string; fingerprint: string; at: number };

  constructor(
    private readonly pki: CertificateAuthority,
    private readonly session: Session,
  ) {}

  /** The CA certificate and its SHA-256 fingerprint; 503 until init made the CA. */
  async caCertificate(): Promise<{ pem: string; fingerprint: string }> {
    if (this.ca && Date.now() - this.ca.at < CA_CACHE_MS) return this.ca;
    const pem = await this.pki.caPem();
    if (!pem) throw new ServiceUnavailable('rks has no CA yet: run init');
    this.ca = { pem, fingerprint: sha256Fingerprint(new X509Certificate(pem).raw), at: Date.now() };
    return this.ca;
  }

  /**
   * Signs a CSR as a leaf. With a caller token (an administrator's) the caller's Vault policy
   * decides and the certificate serves and authenticates (server and client auth). A
   * PSK-authenticated caller gets client authentication only, signed with rks's own session:
   * the CA that vouches for rks to its edges must not let a PSK holder serve as rks, nor as any
   * name the edges serve.
   */
  async sign(csrText: string, lifetimeSeconds: number, token?: string): Promise<string> {
    const csr = await checkCsr(csrText);
    try {
      const signed = token
        ? await this.pki.sign(PKI_SERVER_ROLE, csr.pem, lifetimeSeconds, token)
        : await this.session.run((t) => this.pki.sign(PKI_CLIENT_ROLE, csr.pem, lifetimeSeconds, t));
      return signed.certificate;
    } catch (err) {
      // Vault's PKI refusing what the CSR asks for is the caller's to fix, not a failure of rks.
      if (isRefused(err)) throw new BadRequest('the CA refuses to sign this CSR: ask for DNS names and IP addresses only (no URI, e-mail or other names, no wildcard)');
      throw err;
    }
  }

  /** A server certificate for rks itself; the key is made here and never sent anywhere. */
  async issueServerCertificate(commonName: string, dnsNames: string[], ipAddresses: string[], lifetimeSeconds: number): Promise<IssuedPair> {
    const { keyPem, csrPem } = await newKeyAndCsr({ commonName, dnsNames, ipAddresses });
    const signed = await this.session.run((t) => this.pki.sign(PKI_SERVER_ROLE, csrPem, lifetimeSeconds, t));
    return {
      cert: signed.certificate,
      key: keyPem,
      chain: signed.certificate + signed.issuingCa,
      notAfter: new Date(signed.expiration * 1000),
    };
  }
}
