import { webcrypto } from 'node:crypto';
import os from 'node:os';

export interface KeyPairPem {
  cert: string;
  key: string;
}

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** The names this host answers to: its host name, localhost and every local address. */
export function localNames(extra: string[] = []): { dns: string[]; ips: string[] } {
  const dns = new Set(['localhost', os.hostname(), ...extra.filter((n) => !/^[\d.:]+$/.test(n))]);
  const ips = new Set(['127.0.0.1', '::1', ...extra.filter((n) => /^[\d.:]+$/.test(n))]);
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) ips.add(a.address.replace(/%.*$/, ''));
  }
  return { dns: [...dns], ips: [...ips] };
}

/** A throw-away self-signed server certificate, for serving before a CA exists. */
export async function selfSignedCertificate(commonName = os.hostname(), days = 30): Promise<KeyPairPem> {
  const { x509, toPem } = await import('./x509');
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const { dns, ips } = localNames();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${commonName.replace(/[,=+<>#;"\\]/g, '')}, O=rks ephemeral`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * 86_400_000),
    keys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...dns.map((value) => ({ type: 'dns' as const, value })),
        ...ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: cert.toString('pem') + '\n', key: toPem(pkcs8, 'PRIVATE KEY') };
}
