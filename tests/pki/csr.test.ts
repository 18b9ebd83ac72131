import { createPublicKey, webcrypto } from 'node:crypto';
import { checkCsr, newKeyAndCsr } from '../../src/pki/csr';
import { toPem, x509 } from '../../src/pki/x509';

async function csrWith(alg: any, extensions: x509.Extension[] = []): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=component', keys: keys as never, signingAlgorithm: alg, extensions });
  return csr.toString('pem');
}
const rsa = (bits: number) => ({ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: bits });
const ec = (curve: string) => ({ name: 'ECDSA', namedCurve: curve, hash: 'SHA-256' });

describe('checkCsr', () => {
  it.each([
    ['EC P-256', ec('P-256')],
    ['EC P-384', ec('P-384')],
    ['RSA 2048', rsa(2048)],
  ])('accepts %s', async (_what, alg) => {
    const checked = await checkCsr(await csrWith(alg));
    expect(checked.subject).toBe('CN=component');
  });

  it('accepts what newKeyAndCsr makes, with its names', async () => {
    const { csrPem, keyPem } = await newKeyAndCsr({ commonName: 'svc', dnsNames: ['svc.local'], ipAddresses: ['10.0.0.1'] });
    expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    expect(csr.subject).toBe('CN=svc');
    expect((csr.getExtension('2.5.29.17') as x509.SubjectAlternativeNameExtension).names.toJSON()).toEqual([
      { type: 'dns', value: 'svc.local' },
      { type: 'ip', value: '10.0.0.1' },
    ]);
    await expect(checkCsr(csrPem)).resolves.toEqual({ pem: expect.stringMatching(/^-----BEGIN CERTIFICATE REQUEST-----/), subject: 'CN=svc' });
  });

  it('makes RSA 3072 keys for --key-type rsa', async () => {
    const { csrPem } = await newKeyAndCsr({ commonName: 'r', keyType: 'rsa' });
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    const key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(3072);
  }, 30_000);

  it.each([
    ['garbage', async () => 'hello', 'body must be a PEM certificate signing request'],
    ['a broken block', async () => '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----', 'not a valid certificate signing request'],
    ['RSA 1024', async () => csrWith(rsa(1024)), 'at least 2048 bits'],
    ['EC P-521', async () => csrWith({ ...ec('P-521'), hash: 'SHA-512' }), 'P-256 or P-384'],
    ['a CA request', async () => csrWith(ec('P-256'), [new x509.BasicConstraintsExtension(true, undefined, true)]), 'asks for a CA certificate'],
    ['a certificate-signing key usage', async () => csrWith(ec('P-256'), [new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign)]), 'asks for a CA certificate'],
    ['a bad signature', async () => {
      const pem = await csrWith(ec('P-256'));
      const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      der[der.length - 5] ^= 0xff;
      return toPem(der, 'CERTIFICATE REQUEST');
    }, /signature does not verify|not a valid/],
  ])('refuses %s with a reason', async (_what, make, reason) => {
    await expect(checkCsr(await make())).rejects.toThrow(reason);
  });
});
