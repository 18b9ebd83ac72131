import { createPublicKey, webcrypto } from 'node:crypto';
import { BadRequest } from '../errors';
import type * as X509 from './x509';

/** @peculiar/x509 and its ASN.1 stack, loaded when a CSR is first made or checked. */
const lib = (): Promise<typeof X509> => import('./x509');

export type KeyType = 'ec' | 'rsa';

const CSR_BLOCK = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----[\s\S]+?-----END (NEW )?CERTIFICATE REQUEST-----/;
const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384' };

export interface CheckedCsr {
  pem: string;
  subject: string;
}

/**
 * Accepts a PEM CSR that a CA may sign as a leaf: a valid self-signature, an RSA key of at
 * least 2048 bits or an EC key on P-256 or P-384, and no request to become a CA.
 */
export async function checkCsr(text: string): Promise<CheckedCsr> {
  const { x509 } = await lib();
  const block = CSR_BLOCK.exec(text)?.[0];
  if (!block) throw new BadRequest('body must be a PEM certificate signing request');
  let csr: X509.x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(block);
  } catch {
    throw new BadRequest('not a valid certificate signing request');
  }
  let signed = false;
  try {
    signed = await csr.verify();
  } catch {
    signed = false;
  }
  if (!signed) throw new BadRequest('the CSR signature does not verify');

  const key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) throw new BadRequest('RSA keys must have at least 2048 bits');
  } else if (key.asymmetricKeyType === 'ec') {
    if (!CURVES[details.namedCurve ?? '']) throw new BadRequest('EC keys must be on P-256 or P-384');
  } else {
    throw new BadRequest(`unsupported key type '${key.asymmetricKeyType}': use RSA or EC`);
  }

  const basic = csr.getExtension('2.5.29.19') as X509.x509.BasicConstraintsExtension | null;
  const usage = csr.getExtension('2.5.29.15') as X509.x509.KeyUsagesExtension | null;
  if (basic?.ca || (usage && usage.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign))) {
    throw new BadRequest('the CSR asks for a CA certificate; only leaf certificates are signed');
  }
  return { pem: csr.toString('pem') + '\n', subject: csr.subject };
}

export interface KeyAndCsr {
  keyPem: string;
  csrPem: string;
}

export interface CsrRequest {
  commonName: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  keyType?: KeyType;
  /** RSA modulus length; EC keys are P-256 (or P-384 with 384). */
  keyBits?: number;
}

/** A new private key and a CSR for it; the key stays with the caller. */
export async function newKeyAndCsr(req: CsrRequest): Promise<KeyAndCsr> {
  const { x509, toPem } = await lib();
  const rsa = req.keyType === 'rsa';
  const alg = rsa
    ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: req.keyBits ?? 3072 }
    : { name: 'ECDSA', namedCurve: req.keyBits === 384 ? 'P-384' : 'P-256', hash: req.keyBits === 384 ? 'SHA-384' : 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const san = [
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [req.commonName] }],
    keys: keys as never,
    signingAlgorithm: alg,
    extensions: san.length ? [new x509.SubjectAlternativeNameExtension(san)] : [],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { keyPem: toPem(pkcs8, 'PRIVATE KEY'), csrPem: csr.toString('pem') + '\n' };
}
