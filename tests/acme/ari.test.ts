import { webcrypto } from 'node:crypto';
import { ariCertId, pickInWindow } from '../../src/acme/ari';
import { renewAt } from '../../src/managed/service';
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

describe('the cadence of ACME renewals', () => {
  const spec = { issuer: 'pebble', sans: ['a.example.com'], keyType: 'ec-p256' as const };
  const issuedAt = (notBefore: number, lifetime: number) =>
    ({ certificate: '', private_key: '', info: { notBefore: new Date(notBefore * 1000).toISOString(), notAfter: new Date((notBefore + lifetime) * 1000).toISOString() } }) as never;

  it("orders a 1-hour certificate at most every half hour over a day, whatever the CA's window says", () => {
    const lifetime = 3600;
    // Pebble's window covers a short certificate's whole life; a past window means "now".
    const windows = [(nb: number) => ({ start: nb, end: nb + lifetime, recheckIn: 60 }), () => ({ start: 0, end: 1, recheckIn: 60 })];
    for (const windowOf of windows) {
      let issued = 1_000_000;
      let orders = 0;
      while (issued < 1_000_000 + 86400) {
        const next = renewAt(issuedAt(issued, lifetime), spec, windowOf(issued));
        expect(next - issued).toBeGreaterThanOrEqual(lifetime / 2);
        issued = next;
        orders++;
      }
      expect(orders).toBeLessThanOrEqual(48);
    }
  });

  it('a 90-day certificate is never ordered again within 36 hours, and at once after that when the CA says so', () => {
    const lifetime = 90 * 86400;
    const nb = 1_000_000;
    expect(renewAt(issuedAt(nb, lifetime), spec, { start: 0, end: 1, recheckIn: 60 })).toBe(nb + 36 * 3600);
    const late = renewAt(issuedAt(nb, lifetime), spec, { start: nb + 50 * 86400, end: nb + 50 * 86400 + 1, recheckIn: 60 });
    expect(late).toBe(nb + 50 * 86400);
  });
});
