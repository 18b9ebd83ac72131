import { webcrypto } from 'node:crypto';
import { ariCertId, pickInWindow } from '../../src/acme/ari';
import { x509 } from '../../src/pki/x509';

describe('ACME Renewal Information (RFC 9773)', () => {
  it('names a certificate as the RFC example does: authority key id and serial, base64url', async () => {
    // RFC 9773 §4.1: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 00:87:65:43:21.
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: '0087654321',
      subject: 'CN=ari.example.com',
      issuer: 'CN=issuer',
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 86400_000),
      signingAlgorithm: alg,
      publicKey: keys.publicKey as never,
      signingKey: keys.privateKey as never,
      extensions: [new x509.AuthorityKeyIdentifierExtension('69885b6b87464041e1b37b847ba0ae2cde01c8d4')],
    });
    expect(await ariCertId(cert.toString('pem'))).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  });

  it('a certificate without an authority key id has no ARI name', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=x', keys: keys as never, signingAlgorithm: alg });
    expect(await ariCertId(cert.toString('pem'))).toBeUndefined();
  });

  it('picks the renewal time uniformly within the window', () => {
    const w = { start: 1000, end: 2000, recheckIn: 3600 };
    expect(pickInWindow(w, 0)).toBe(1000);
    expect(pickInWindow(w, 0.5)).toBe(1500);
    expect(pickInWindow(w, 0.999)).toBeLessThanOrEqual(2000);
  });
});
