import { X509Certificate } from 'node:crypto';
import { BadRequest } from '../../src/errors';
import { validateTlsMaterial } from '../../src/secrets/tls';
import { Chain, DAYS, chainFor, issue, newKeys } from '../support/pki';

describe('validateTlsMaterial', () => {
  let chain: Chain;
  beforeAll(async () => {
    chain = await chainFor(['www.example.com', 'example.com']);
  });

  const subjects = (pem: string) =>
    pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p).subject);

  it('accepts a chain in order and keeps it so', () => {
    const tls = validateTlsMaterial('www.example.com', chain.certificate, chain.privateKey);
    expect(subjects(tls.certificate)).toEqual(['CN=www.example.com', 'CN=rks test intermediate', 'CN=rks test root']);
    expect(tls.privateKey).toBe(chain.privateKey);
  });

  it('puts a shuffled chain in order', () => {
    const shuffled = chain.root.certPem + chain.leaf.certPem + chain.intermediate.certPem;
    const tls = validateTlsMaterial('example.com', shuffled, chain.privateKey);
    expect(subjects(tls.certificate)).toEqual(['CN=www.example.com', 'CN=rks test intermediate', 'CN=rks test root']);
  });

  it('accepts a lone leaf and text around the PEM blocks', () => {
    const tls = validateTlsMaterial('www.example.com', `subject=CN=www.example.com\n${chain.leaf.certPem}`, chain.privateKey);
    expect(subjects(tls.certificate)).toEqual(['CN=www.example.com']);
  });

  it('refuses a key that does not match', async () => {
    const other = await chainFor(['www.example.com']);
    expect(() => validateTlsMaterial('www.example.com', chain.certificate, other.privateKey)).toThrow(
      'private_key does not match any certificate in the chain',
    );
  });

  it('refuses a certificate from another chain', async () => {
    const stranger = await issue({ name: 'stranger', ca: true });
    expect(() =>
      validateTlsMaterial('www.example.com', chain.certificate + stranger.certPem, chain.privateKey),
    ).toThrow("certificate 'stranger' is not part of the chain of 'www.example.com'");
  });

  it('refuses an expired leaf', async () => {
    const old = await chainFor(['old.example.com'], {
      notBefore: new Date(Date.now() - DAYS(60)),
      notAfter: new Date(Date.now() - DAYS(1)),
    });
    expect(() => validateTlsMaterial('old.example.com', old.certificate, old.privateKey)).toThrow(
      /certificate 'old.example.com' expired on \d{4}-/,
    );
  });

  it('refuses a certificate not valid for the name', () => {
    expect(() => validateTlsMaterial('api.example.com', chain.certificate, chain.privateKey)).toThrow(
      "certificate 'www.example.com' is not valid for 'api.example.com'",
    );
  });

  it('matches wildcard names exactly', async () => {
    const wild = await chainFor(['*.example.org']);
    expect(() => validateTlsMaterial('*.example.org', wild.certificate, wild.privateKey)).not.toThrow();
    expect(() => validateTlsMaterial('a.example.org', wild.certificate, wild.privateKey)).not.toThrow();
    expect(() => validateTlsMaterial('*.other.org', wild.certificate, wild.privateKey)).toThrow(/not valid for/);
    expect(() => validateTlsMaterial('*.example.org', chain.certificate, chain.privateKey)).toThrow(/not valid for/);
  });

  it('accepts an RSA key', async () => {
    const keys = await newKeys('rsa');
    const root = await issue({ name: 'rsa root', ca: true, keys });
    const leaf = await issue({ name: 'rsa.example.com', dns: ['rsa.example.com'], issuer: root, keys: await newKeys('rsa') });
    expect(() => validateTlsMaterial('rsa.example.com', leaf.certPem + root.certPem, leaf.keyPem)).not.toThrow();
  });

  it.each([
    ['garbage', 'hello world', /certificate: no PEM block found/],
    [
      'a broken certificate block',
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
      /certificate: block 1 is not a valid X.509 certificate/,
    ],
  ])('refuses %s as certificate', (_what, certificate, reason) => {
    expect(() => validateTlsMaterial('www.example.com', certificate, chain.privateKey)).toThrow(reason);
  });

  it('refuses a private key in the certificate field', () => {
    expect(() => validateTlsMaterial('www.example.com', chain.privateKey, chain.privateKey)).toThrow(
      "certificate: block 1 is 'PRIVATE KEY', expected 'CERTIFICATE'",
    );
  });

  it.each([
    ['garbage', 'not a key', /private_key: no PEM block found/],
    ['a broken key', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----', /not a valid PEM private key/],
    ['an encrypted key', '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----', /encrypted/],
    ['a certificate', 'CERT', /expected a PEM private key, found 'CERTIFICATE'/],
  ])('refuses %s as private key', (_what, key, reason) => {
    const k = key === 'CERT' ? chain.leaf.certPem : key;
    const err = (() => {
      try {
        validateTlsMaterial('www.example.com', chain.certificate, k);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(BadRequest);
    expect((err as Error).message).toMatch(reason);
  });
});
