import { X509Certificate } from 'node:crypto';
import type { CertificateFacts } from '../records/secrets';


/** Node gives no subject at all for an empty one (ACME CAs issue such leaves: the names are in the SANs). */
const oneLine = (dn: string | undefined) => (dn ?? '').replace(/\n/g, ', ');

export function certificateFacts(leaf: X509Certificate, chainLength: number): CertificateFacts {
  const key = leaf.publicKey;
  const d = key.asymmetricKeyDetails ?? {};
  const keyType =
    key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss'
      ? `RSA ${d.modulusLength}`
      : key.asymmetricKeyType === 'ec'
        ? `EC ${{ prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }[d.namedCurve ?? ''] ?? d.namedCurve}`
        : ({ ed25519: 'Ed25519', ed448: 'Ed448' } as Record<string, string>)[key.asymmetricKeyType ?? ''] ?? String(key.asymmetricKeyType);
  return {
    subject: oneLine(leaf.subject),
    sans: (leaf.subjectAltName ?? '').split(', ').filter(Boolean),
    issuer: oneLine(leaf.issuer),
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: new Date(leaf.validTo).toISOString(),
    keyType,
    sha256Fingerprint: leaf.fingerprint256,
    chainLength,
  };
}

/** The facts of a stored chain (leaf first), for secrets stored before facts were kept. */
export function factsOfChain(certificate: string): CertificateFacts {
  const blocks = certificate.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return certificateFacts(new X509Certificate(blocks[0] ?? certificate), blocks.length);
}

/**
 * The facts of a stored certificate, or why there are none: a classic RKS stored whatever it was
 * given (placeholder strings too), and rks keeps such secrets as they are rather than drop them.
 */
export function storedFacts(certificate: string): CertificateFacts | { invalid: string } {
  try {
    return factsOfChain(certificate);
  } catch {
    return { invalid: 'the stored certificate is not a readable PEM certificate (stored before rks checked TLS material)' };
  }
}

/** Warnings a push deserves: a certificate that lapses before nodes' copies do, or within a day. */
export function expiryWarnings(facts: CertificateFacts, ttlSeconds: number, now = Date.now()): string[] {
  const left = (Date.parse(facts.notAfter) - now) / 1000;
  if (left <= ttlSeconds) return [`the certificate expires at ${facts.notAfter}, within the secret's TTL (${ttlSeconds} s): nodes may keep it after it lapsed`];
  if (left <= 86400) return [`the certificate expires within a day, at ${facts.notAfter}`];
  return [];
}
