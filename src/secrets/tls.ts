import { KeyObject, X509Certificate, createPrivateKey } from 'node:crypto';
import { BadRequest } from '../errors';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n-----END \1-----/g;
/** Certificates issued a moment ago on a machine whose clock runs ahead are still accepted. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

export interface TlsMaterial {
  /** The chain in order, leaf first, as PEM. */
  certificate: string;
  /** The leaf's private key as PEM, exactly as given. */
  privateKey: string;
  leaf: X509Certificate;
  chain: X509Certificate[];
}

interface Block {
  label: string;
  pem: string;
}

function pemBlocks(text: string): Block[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1], pem: `${m[0]}\n` }));
}

function describe(cert: X509Certificate): string {
  const cn = /CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn ? `'${cn}'` : `'${cert.subject.replace(/\n/g, ', ')}'`;
}

function dnsNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
}

/** True when the certificate is valid for `fqdn` (for `*.x.y`, it must carry that wildcard). */
export function coversName(cert: X509Certificate, fqdn: string): boolean {
  if (fqdn.startsWith('*.')) return dnsNames(cert).includes(fqdn);
  return cert.checkHost(fqdn) !== undefined;
}

function parseKey(text: string): { key: KeyObject; pem: string } {
  const blocks = pemBlocks(text);
  if (blocks.length === 0) throw new BadRequest('private_key: no PEM block found');
  if (blocks.length > 1) throw new BadRequest('private_key: expected exactly one PEM block');
  const [block] = blocks;
  if (block.label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type: 4,ENCRYPTED/.test(block.pem)) {
    throw new BadRequest('private_key: encrypted private keys are not accepted; store the key unencrypted');
  }
  if (!/PRIVATE KEY$/.test(block.label)) {
    throw new BadRequest(`private_key: expected a PEM private key, found '${block.label}'`);
  }
  try {
    return { key: createPrivateKey({ key: block.pem, format: 'pem' }), pem: block.pem };
  } catch {
    throw new BadRequest('private_key: not a valid PEM private key');
  }
}

function parseCertificates(text: string): X509Certificate[] {
  const blocks = pemBlocks(text);
  if (blocks.length === 0) throw new BadRequest('certificate: no PEM block found');
  return blocks.map((b, i) => {
    if (b.label !== 'CERTIFICATE') {
      throw new BadRequest(`certificate: block ${i + 1} is '${b.label}', expected 'CERTIFICATE'`);
    }
    try {
      return new X509Certificate(b.pem);
    } catch {
      throw new BadRequest(`certificate: block ${i + 1} is not a valid X.509 certificate`);
    }
  });
}

function issued(issuer: X509Certificate, child: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Checks a certificate chain and private key the way a TLS server will use them: the key
 * belongs to a certificate (the leaf), every further certificate issued the one before it,
 * none has expired, and the leaf is valid for `fqdn`. Returns the chain in order.
 */
export function validateTlsMaterial(
  fqdn: string,
  certificate: string,
  privateKey: string,
  now: Date = new Date(),
): TlsMaterial {
  const { key, pem: keyPem } = parseKey(privateKey);
  const certs = parseCertificates(certificate);

  const leafIndex = certs.findIndex((c) => c.checkPrivateKey(key));
  if (leafIndex < 0) {
    throw new BadRequest('private_key does not match any certificate in the chain');
  }
  const rest = certs.filter((_, i) => i !== leafIndex);
  const chain = [certs[leafIndex]];
  while (rest.length > 0) {
    const last = chain[chain.length - 1];
    const next = rest.findIndex((c) => issued(c, last));
    if (next < 0) break;
    chain.push(...rest.splice(next, 1));
  }
  if (rest.length > 0) {
    throw new BadRequest(
      `certificate ${describe(rest[0])} is not part of the chain of ${describe(chain[0])}`,
    );
  }

  for (const cert of chain) {
    if (new Date(cert.validTo).getTime() <= now.getTime()) {
      throw new BadRequest(`certificate ${describe(cert)} expired on ${new Date(cert.validTo).toISOString()}`);
    }
    if (new Date(cert.validFrom).getTime() > now.getTime() + CLOCK_SKEW_MS) {
      throw new BadRequest(
        `certificate ${describe(cert)} is not valid before ${new Date(cert.validFrom).toISOString()}`,
      );
    }
  }
  if (!coversName(chain[0], fqdn)) {
    throw new BadRequest(`certificate ${describe(chain[0])} is not valid for '${fqdn}'`);
  }

  return {
    certificate: chain.map((c) => c.toString()).join(''),
    privateKey: keyPem,
    leaf: chain[0],
    chain,
  };
}
