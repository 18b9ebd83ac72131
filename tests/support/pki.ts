import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type Keys = webcrypto.CryptoKeyPair;

export interface Issued {
  cert: x509.X509Certificate;
  keys: Keys;
  certPem: string;
  keyPem: string;
}

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;
const DAY = 86_400_000;
let serial = 1;

async function keyPem(keys: Keys): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

export async function newKeys(kind: 'ec' | 'rsa' = 'ec'): Promise<Keys> {
  const alg = kind === 'ec' ? EC : RSA;
  return (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as Keys;
}

interface IssueOptions {
  name: string;
  issuer?: Issued;
  ca?: boolean;
  dns?: string[];
  ips?: string[];
  notBefore?: Date;
  notAfter?: Date;
  keys?: Keys;
}

/** Issues a certificate: self-signed without `issuer`, a CA with `ca`. */
export async function issue(o: IssueOptions): Promise<Issued> {
  const keys = o.keys ?? (await newKeys());
  const signer = o.issuer?.keys ?? keys;
  const alg = (signer.privateKey.algorithm as { name: string }).name === 'ECDSA' ? EC : RSA;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(Boolean(o.ca), undefined, true),
    new x509.KeyUsagesExtension(
      o.ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  const san = [
    ...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(o.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (san.length) extensions.push(new x509.SubjectAlternativeNameExtension(san));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    subject: `CN=${o.name}`,
    issuer: o.issuer ? o.issuer.cert.subject : `CN=${o.name}`,
    notBefore: o.notBefore ?? new Date(Date.now() - DAY),
    notAfter: o.notAfter ?? new Date(Date.now() + 30 * DAY),
    publicKey: keys.publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm: alg,
    extensions,
  });
  return { cert, keys, certPem: cert.toString('pem') + '\n', keyPem: await keyPem(keys) };
}

export interface Chain {
  root: Issued;
  intermediate: Issued;
  leaf: Issued;
  /** Leaf, intermediate, root: the order a server sends. */
  certificate: string;
  privateKey: string;
}

/** root → intermediate → leaf for `names` (the first is the CN). */
export async function chainFor(names: string[], leafOverrides: Partial<IssueOptions> = {}): Promise<Chain> {
  const root = await issue({ name: 'rks test root', ca: true });
  const intermediate = await issue({ name: 'rks test intermediate', ca: true, issuer: root });
  const leaf = await issue({ name: names[0], dns: names, issuer: intermediate, ...leafOverrides });
  return {
    root,
    intermediate,
    leaf,
    certificate: leaf.certPem + intermediate.certPem + root.certPem,
    privateKey: leaf.keyPem,
  };
}

export const DAYS = (n: number) => n * DAY;
