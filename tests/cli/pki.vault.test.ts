import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { PskJwt, bearer } from '../../src/pki/psk';
import { adminToken, env, harness } from '../support/harness';
import { chainFor } from '../support/pki';
import { Running, httpsRequest, peerCertificate, runRks } from '../support/serve';
import { freePort } from '../support/vault';

const PSK = 'correct-horse-psk';

/** rks serve, the CA and the bootstrap, end to end over real TLS. */
describe('HTTPS by default and the trust bootstrap', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-pki-'));
  const base = { RKS_VAULT_ADDR: env.vaultAddr, RKS_ADMIN_PASSWORD: env.adminPassword, RKS_ADMIN_LOGIN: env.adminLogin, RKS_PSK: PSK };
  let port: number;
  let rks: Running;
  let caPem: string;

  beforeAll(async () => {
    port = await freePort();
    rks = runRks(['serve', '--listen', `127.0.0.1:${port}`, '--hostname', 'rks.test'], base);
    await rks.waitFor('rks listening');
  });
  afterAll(async () => {
    await rks.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves a certificate from its CA; a verifying TLS client accepts the chain against /ca/cert', async () => {
    expect(rks.output()).toContain('serving with a certificate from the rks CA');
    const res = await httpsRequest(`https://127.0.0.1:${port}/ca/cert`, { insecure: true });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/x-pem-file/);
    caPem = res.body;
    const ca = new X509Certificate(caPem);
    const claims = await new PskJwt(PSK).verify(bearer(String(res.headers.authorization))!, 'ca-fingerprint');
    expect(claims.sha256_fingerprint).toBe(ca.fingerprint256);

    const ok = await httpsRequest(`https://127.0.0.1:${port}/healthz`, { ca: caPem });
    expect(ok.status).toBe(200);
    await expect(httpsRequest(`https://127.0.0.1:${port}/healthz`)).rejects.toThrow(/certificate/);
    const peer = await peerCertificate(port);
    expect(peer.subject.CN).toBe('rks.test');
    expect(peer.issuer.CN).toBe('rks CA');
  });

  it('rks ca cert --psk verifies the fingerprint and writes the CA', async () => {
    const out = path.join(dir, 'ca.pem');
    const cli = runRks(['ca', 'cert', '--url', `https://127.0.0.1:${port}`, '--out', out], { RKS_PSK: PSK });
    expect(await cli.exited).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toBe(caPem);
    expect(cli.output()).toContain('verified    fingerprint signed with the PSK');
  });

  it('rks ca cert with a wrong PSK refuses and writes nothing', async () => {
    const out = path.join(dir, 'wrong.pem');
    const cli = runRks(['ca', 'cert', '--url', `https://127.0.0.1:${port}`, '--psk', 'not-the-psk', '--out', out]);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain('does not verify with this PSK');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('rks ca cert without a PSK needs a verifiable TLS certificate', async () => {
    const cli = runRks(['ca', 'cert', '--url', `https://127.0.0.1:${port}`]);
    expect(await cli.exited).toBe(3);
    expect(cli.output()).toContain("cannot verify rks's TLS certificate");
    const trusted = runRks(['ca', 'cert', '--url', `https://127.0.0.1:${port}`, '--ca-cert', path.join(dir, 'ca.pem')]);
    expect(await trusted.exited).toBe(0);
    expect(trusted.output()).toBe(caPem);
  });

  it('rks certificate create (PSK) writes a 0600 key and a certificate the CA signed', async () => {
    const cli = runRks(
      ['certificate', 'create', '--common-name', 'collector', '--dns-names', 'collector.local,c.local', '--ip-addresses', '10.1.2.3', '--days', '7', '--out', dir],
      { RKS_URL: `https://127.0.0.1:${port}`, RKS_CA_CERT: path.join(dir, 'ca.pem'), RKS_PSK: PSK },
    );
    expect(await cli.exited).toBe(0);
    expect(cli.output()).toContain(path.join(dir, 'collector.key'));
    expect(fs.statSync(path.join(dir, 'collector.key')).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(fs.readFileSync(path.join(dir, 'collector.crt')));
    expect(cert.verify(new X509Certificate(caPem).publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(dir, 'collector.key'))))).toBe(true);
    // Vault also lists the common name among the DNS names.
    expect(cert.subjectAltName!.split(', ').sort()).toEqual(['DNS:c.local', 'DNS:collector', 'DNS:collector.local', 'IP Address:10.1.2.3']);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const days = (new Date(cert.validTo).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThan(7.1);

    const again = runRks(['certificate', 'create', '--common-name', 'collector', '--out', dir], { RKS_URL: `https://127.0.0.1:${port}`, RKS_CA_CERT: path.join(dir, 'ca.pem'), RKS_PSK: PSK });
    expect(await again.exited).toBe(1);
    expect(again.output()).toContain('exists; use --force');
  });

  it('rks certificate create --key-type rsa with an admin token makes RSA 3072', async () => {
    const h = harness();
    const token = await adminToken(h.app);
    h.close();
    const cli = runRks(['certificate', 'create', '--common-name', 'rsa-svc', '--key-type', 'rsa', '--out', dir], {
      RKS_URL: `https://127.0.0.1:${port}`,
      RKS_CA_CERT: path.join(dir, 'ca.pem'),
      RKS_TOKEN: token,
    });
    expect(await cli.exited).toBe(0);
    const cert = new X509Certificate(fs.readFileSync(path.join(dir, 'rsa-svc.crt')));
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
  }, 30_000);

  it('rks certificate create without a PSK or token is a usage error (2)', async () => {
    const cli = runRks(['certificate', 'create', '--common-name', 'x', '--out', dir], { RKS_URL: `https://127.0.0.1:${port}` });
    expect(await cli.exited).toBe(2);
    expect(cli.output()).toContain('give --psk');
  });

  it('renews its certificate without a restart; a keep-alive client keeps working', async () => {
    const p = await freePort();
    const short = runRks(['serve', '--listen', `127.0.0.1:${p}`, '--cert-lifetime', '5', '--cert-renew-before', '3'], base);
    try {
      await short.waitFor('serving with a certificate from the rks CA');
      await short.waitFor('rks listening');
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: caPem });
      const first = await peerCertificate(p);
      const sockets = new Set<unknown>();
      const get = () =>
        new Promise<number>((resolve, reject) => {
          const req = https.get(`https://localhost:${p}/healthz`, { agent }, (res) => {
            sockets.add(res.socket);
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          });
          req.on('error', reject);
        });
      expect(await get()).toBe(200);
      await short.waitFor('server certificate renewed', 10_000);
      expect(await get()).toBe(200);
      expect(sockets.size).toBe(1);
      const second = await peerCertificate(p);
      expect(second.fingerprint256).not.toBe(first.fingerprint256);
      expect(second.issuer.CN).toBe('rks CA');
      agent.destroy();
    } finally {
      await short.stop();
    }
  }, 30_000);

  it('serves an external certificate with an encrypted key (--cert-key-pass)', async () => {
    const p = await freePort();
    const c = await chainFor(['localhost']);
    const encrypted = createPrivateKey(c.privateKey).export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'open sesame' });
    fs.writeFileSync(path.join(dir, 'ext.crt'), c.certificate);
    fs.writeFileSync(path.join(dir, 'ext.key'), encrypted);
    const args = ['serve', '--listen', `127.0.0.1:${p}`, '--cert', path.join(dir, 'ext.crt'), '--cert-key', path.join(dir, 'ext.key')];

    const wrong = runRks([...args, '--cert-key-pass', 'nope'], base);
    expect(await wrong.exited).toBe(2);
    expect(wrong.output()).toContain('wrong or missing --cert-key-pass');

    const ok = runRks(args, { ...base, RKS_CERT_KEY_PASS: 'open sesame' });
    try {
      await ok.waitFor('rks listening');
      const res = await httpsRequest(`https://localhost:${p}/healthz`, { ca: c.root.certPem });
      expect(res.status).toBe(200);
      expect((await peerCertificate(p)).subject.CN).toBe('localhost');
      expect(ok.output()).not.toContain('open sesame');
    } finally {
      await ok.stop();
    }
  });
});
