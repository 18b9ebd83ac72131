import { X509Certificate, createHmac, pbkdf2Sync, randomBytes, webcrypto } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import request from 'supertest';
import { newKeyAndCsr } from '../../src/pki/csr';
import { PskJwt, bearer } from '../../src/pki/psk';
import { x509 } from '../../src/pki/x509';
import { Harness, adminToken, env, harness } from '../support/harness';
import { createGroup, registerNode, uniq } from '../support/rks';

const PSK = 'the-shared-psk';

/** A PSK JWT built by hand from the recipe, to test what rks accepts. */
function jwt(psk: string, payload: object, header: object = {}): string {
  const salt = randomBytes(16);
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const h = enc({ typ: 'JWT', alg: 'HS256', salt: salt.toString('base64'), ...header });
  const p = enc(payload);
  const key = pbkdf2Sync(psk, salt, 100_000, 32, 'sha256');
  return `${h}.${p}.${createHmac('sha256', key).update(`${h}.${p}`).digest('base64url')}`;
}
const exp = (s: number) => ({ exp: Math.floor(Date.now() / 1000) + s });

async function csrFor(alg: any, extensions: x509.Extension[] = []): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  return (await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=c', keys: keys as never, signingAlgorithm: alg, extensions })).toString('pem');
}

describe('/ca/cert and /ca/sign', () => {
  let withPsk: Harness;
  let noPsk: Harness;
  let admin: string;
  let csr: string;
  beforeAll(async () => {
    withPsk = harness({ psk: PSK });
    noPsk = harness();
    admin = await adminToken(noPsk.app);
    csr = (await newKeyAndCsr({ commonName: 'component', dnsNames: ['component.local'] })).csrPem;
  });
  afterAll(() => {
    withPsk.close();
    noPsk.close();
  });

  describe('GET /ca/cert', () => {
    it('answers the CA unauthenticated; no Authorization header without a PSK', async () => {
      const res = await request(noPsk.app).get('/ca/cert');
      expect(res.status).toBe(200);
      expect(new X509Certificate(res.text).subject).toBe('CN=rks CA');
      expect(res.headers.authorization).toBeUndefined();
    });

    it('with a PSK, carries a JWT of the fingerprint that verifies with the PSK only', async () => {
      const res = await request(withPsk.app).get('/ca/cert');
      const token = bearer(res.headers.authorization)!;
      const claims = await new PskJwt(PSK).verify(token, 'ca-fingerprint');
      expect(claims).toMatchObject({ purpose: 'ca-fingerprint', sha256_fingerprint: new X509Certificate(res.text).fingerprint256 });
      await expect(new PskJwt('other').verify(token, 'ca-fingerprint')).rejects.toThrow('bad signature');
    });
  });

  describe('POST /ca/sign', () => {
    const sign = (app: Harness['app'], headers: Record<string, string>, body = csr, query = '') => {
      let r = request(app).post(`/ca/sign${query}`);
      for (const [k, v] of Object.entries(headers)) r = r.set(k, v);
      return r.send(body);
    };

    it.each([
      ['no Content-Type', {}],
      ['text/plain', { 'Content-Type': 'text/plain' }],
      ['application/x-pem-file', { 'Content-Type': 'application/x-pem-file' }],
      ['application/octet-stream', { 'Content-Type': 'application/octet-stream' }],
    ])('signs with a valid PSK JWT and %s (200)', async (_what, headers) => {
      const res = await request(withPsk.app)
        .post('/ca/sign')
        .set({ Authorization: `Bearer ${jwt(PSK, exp(60))}`, ...headers })
        .send(Buffer.from(csr));
      expect(res.status).toBe(200);
      const cert = new X509Certificate(res.text);
      expect(cert.subject).toBe('CN=component');
      const ca = new X509Certificate((await request(withPsk.app).get('/ca/cert')).text);
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.ca).toBe(false);
      // Client authentication only: a PSK holder cannot serve as rks, nor as any name edges serve.
      expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    });

    it('a PSK holder cannot stand in for rks: its certificate, for rks\'s own names, fails a TLS client that trusts the rks CA; an admin\'s serves', async () => {
      const ca = (await request(withPsk.app).get('/ca/cert')).text;
      const serveWith = async (headers: Record<string, string>) => {
        const { keyPem, csrPem } = await newKeyAndCsr({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
        const res = await sign(withPsk.app, headers, csrPem);
        expect(res.status).toBe(200);
        const server = tls.createServer({ cert: res.text, key: keyPem }, (s) => s.end('ok'));
        server.on('tlsClientError', () => undefined);
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        const port = (server.address() as AddressInfo).port;
        try {
          return await new Promise<string>((resolve) => {
            const c = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca }, () => {
              c.destroy();
              resolve('trusted');
            });
            c.on('error', (err) => resolve(err.message));
          });
        } finally {
          server.close();
        }
      };
      expect(await serveWith({ Authorization: `Bearer ${jwt(PSK, exp(60))}` })).toMatch(/unsuitable certificate purpose/);
      expect(await serveWith({ 'X-Vault-Token': admin })).toBe('trusted');
    });

    it('signs with an admin token (200); a group or node token gets 403', async () => {
      expect((await sign(noPsk.app, { 'X-Vault-Token': admin })).status).toBe(200);
      const g = uniq('ca');
      const groupToken = await createGroup(noPsk.app, admin, g);
      const { nodeToken } = await registerNode(noPsk.app, groupToken, 'n1');
      expect((await sign(noPsk.app, { 'X-Vault-Token': groupToken })).status).toBe(403);
      expect((await sign(noPsk.app, { 'X-Vault-Token': nodeToken })).status).toBe(403);
      expect((await sign(noPsk.app, { 'X-Vault-Token': 'bogus' })).status).toBe(403);
    });

    it.each([
      ['nothing', () => ({})],
      ['a wrong PSK', () => ({ Authorization: `Bearer ${jwt('wrong', exp(60))}` })],
      ['an expired JWT', () => ({ Authorization: `Bearer ${jwt(PSK, exp(-60))}` })],
      ['a JWT without salt', () => ({ Authorization: `Bearer ${jwt(PSK, exp(60), { salt: undefined })}` })],
      ['alg none', () => ({ Authorization: `Bearer ${jwt(PSK, exp(60), { alg: 'none' }).replace(/[^.]+$/, '')}` })],
      ['alg RS256', () => ({ Authorization: `Bearer ${jwt(PSK, exp(60), { alg: 'RS256' })}` })],
    ])('with %s is 401', async (_what, headers) => {
      const res = await sign(withPsk.app, headers());
      expect(res.status).toBe(401);
      expect(res.body.errors).toHaveLength(1);
    });

    it('the JWT GET /ca/cert hands anyone vouches for the CA and admits no one: 401, nothing signed', async () => {
      // A stranger without any credential, as an outside review tried it.
      const fromCa = bearer((await request(withPsk.app).get('/ca/cert')).headers.authorization)!;
      const res = await sign(withPsk.app, { Authorization: `Bearer ${fromCa}` });
      expect([res.status, res.body]).toEqual([401, { errors: ['invalid PSK token: it is a CA fingerprint (it vouches for the CA and admits no one), not a request token'], code: 'unauthorized' }]);
      expect(res.text).not.toContain('BEGIN CERTIFICATE');
      // A fingerprint an older rks signed (no purpose claim) is no request either.
      const older = jwt(PSK, { ...exp(60), sha256_fingerprint: new X509Certificate((await request(withPsk.app).get('/ca/cert')).text).fingerprint256 });
      expect((await sign(withPsk.app, { Authorization: `Bearer ${older}` })).status).toBe(401);
    });

    it('a PSK JWT where no PSK is configured is 401', async () => {
      const res = await sign(noPsk.app, { Authorization: `Bearer ${jwt(PSK, exp(60))}` });
      expect(res.status).toBe(401);
      expect(res.body.errors[0]).toMatch(/no PSK is configured/);
    });

    it.each([
      ['garbage', async () => 'garbage', /PEM certificate signing request/],
      ['a CSR with a bad signature', async () => {
        const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
        der[der.length - 3] ^= 0x55;
        return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
      }, /signature|not a valid/],
      ['a CSR for a CA', async () => csrFor({ name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }, [new x509.BasicConstraintsExtension(true, 0, true)]), /CA certificate/],
      ['RSA 1024', async () => csrFor({ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 1024 }), /2048/],
      // Vault's PKI refuses these; that was a 500 (found by an outside review).
      ['a CSR with a URI name', async () => csrFor({ name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }, [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://x/y' }])]), /the CA refuses to sign this CSR/],
    ])('%s is 400', async (_what, make, reason) => {
      const res = await sign(withPsk.app, { Authorization: `Bearer ${jwt(PSK, exp(60))}` }, await make());
      expect(res.status).toBe(400);
      expect(res.body.errors[0]).toMatch(reason);
    });

    it('a token Vault cannot even parse is 403, not a 5xx', async () => {
      for (const t of ['r.abc', 'hvb.!!!!', 'hvs.x']) {
        const res = await request(noPsk.app).get('/rks/v1/group/x').set('X-Vault-Token', t);
        expect([t, res.status, res.body.code]).toEqual([t, 403, 'forbidden']);
      }
    });

    it.each(['RSA 2048', 'EC P-384'])('accepts %s', async (what) => {
      const alg =
        what === 'RSA 2048'
          ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 }
          : { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
      const res = await sign(withPsk.app, { Authorization: `Bearer ${jwt(PSK, exp(60))}` }, await csrFor(alg));
      expect(res.status).toBe(200);
    });

    it('honours ?days= and refuses out-of-range values', async () => {
      const res = await sign(noPsk.app, { 'X-Vault-Token': admin }, csr, '?days=2');
      const days = (new Date(new X509Certificate(res.text).validTo).getTime() - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(1.9);
      expect(days).toBeLessThan(2.1);
      expect((await sign(noPsk.app, { 'X-Vault-Token': admin }, csr, '?days=0')).status).toBe(400);
      expect((await sign(noPsk.app, { 'X-Vault-Token': admin }, csr, '?days=9999')).status).toBe(400);
    });
  });

  describe('--require-psk', () => {
    let strict: Harness;
    beforeAll(() => {
      strict = harness({ psk: PSK, requirePsk: true });
    });
    afterAll(() => strict.close());
    const auth = () => ({ Authorization: `Bearer ${jwt(PSK, exp(60))}` });

    it.each(['/healthz', '/metrics', '/ca/cert', '/openapi.yaml', '/docs'])('%s stays open', async (path) => {
      expect((await request(strict.app).get(path)).status).toBe(200);
    });

    it('every API request needs the PSK JWT too (401 without, normal answer with)', async () => {
      const login = { login: env.adminLogin, password: env.adminPassword };
      const a = await request(strict.app).post('/rks/v1/admin/login').send(login);
      expect(a.status).toBe(401);
      expect(a.body).toMatchObject({ errors: ['this rks requires a PSK JWT in Authorization: Bearer'] });
      const b = await request(strict.app).post('/rks/v1/admin/login').set(auth()).send(login);
      expect(b.status).toBe(200);
      const token = b.body.adminToken;
      expect((await request(strict.app).get('/rks/v1/secret/none.example.com').set('X-Vault-Token', token)).status).toBe(401);
      expect((await request(strict.app).get('/rks/v1/secret/none.example.com').set('X-Vault-Token', token).set(auth())).status).toBe(404);
      expect((await request(strict.app).post('/ca/sign').set('X-Vault-Token', token).send(csr)).status).toBe(401);
      expect((await request(strict.app).post('/ca/sign').set('X-Vault-Token', token).set(auth()).send(csr)).status).toBe(200);
    });

    it.each([
      ['a wrong PSK', () => jwt('wrong', exp(60))],
      ['an expired JWT', () => jwt(PSK, exp(-5))],
      ['garbage', () => 'x.y.z'],
      ['the fingerprint JWT of GET /ca/cert', async () => bearer((await request(strict.app).get('/ca/cert')).headers.authorization)!],
    ])('%s is 401', async (_what, make) => {
      const res = await request(strict.app).get('/rks/v1/group/x').set('Authorization', `Bearer ${await make()}`).set('X-Vault-Token', admin);
      expect(res.status).toBe(401);
      const login = await request(strict.app).post('/rks/v1/admin/login').set('Authorization', `Bearer ${await make()}`).send({ login: env.adminLogin, password: env.adminPassword });
      expect(login.status).toBe(401);
    });
  });
});
