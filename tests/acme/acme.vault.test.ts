import http from 'node:http';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { RksNode } from '../../src/sdk';
import { ServedRks, adminToken, harness, Harness, serveRks, vaultRead, vaultWrite } from '../support/harness';
import { TestPebble, startPebble } from '../support/pebble';
import { createGroup, registerNode, uniq } from '../support/rks';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A real handshake with SNI, verified against Pebble's root: the leaf presented, or the error. */
function handshake(port: number, servername: string, ca: string): Promise<{ fingerprint: string; san: string } | { failed: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername, ca }, () => {
      const cert = s.getPeerCertificate();
      s.destroy();
      resolve({ fingerprint: cert.fingerprint256, san: String(cert.subjectaltname) });
    });
    s.on('error', (err) => resolve({ failed: err.message }));
  });
}

/** The challenge records in Vault for `name` (other suites' orders may be in progress meanwhile). */
async function challengesOf(name: string): Promise<string[]> {
  const tokens: string[] = (await vaultRead('rks/metadata/acme/challenges?list=true')).body?.data?.keys ?? [];
  const records = await Promise.all(tokens.map(async (t) => [t, (await vaultRead(`rks/data/acme/challenges/${t}`)).body?.data?.data?.fqdn] as const));
  return records.filter(([, fqdn]) => fqdn === name).map(([t]) => t);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/**
 * ACME against Pebble, validating for real: Pebble resolves every name to 127.0.0.1 through the
 * test's DNS responder and fetches HTTP-01 answers from the edge's plain-HTTP port, where the
 * node SDK asks rks for them.
 */
describe('managed secrets from an ACME CA (Pebble), challenges answered by the edges', () => {
  let pebble: TestPebble;
  let pebbleRoot: string;
  /** The edge's plain-HTTP port (Pebble's httpPort): whatever handler a test puts here. */
  let port80: http.Server;
  let onHttp: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => void res.writeHead(404).end();
  const fetched: string[] = [];
  let h: Harness;
  let admin: string;

  beforeAll(async () => {
    port80 = http.createServer((req, res) => {
      fetched.push(req.url ?? '');
      onHttp(req, res);
    });
    await new Promise<void>((r) => port80.listen(0, '127.0.0.1', r));
    // Certificates of 30 s: Pebble's renewal window (RFC 9773) is their whole life; rks renews before the last tenth.
    pebble = await startPebble({ httpPort: (port80.address() as AddressInfo).port, validitySeconds: 30 });
    pebbleRoot = await pebble.issuingRoot();
    h = harness();
    admin = await adminToken(h.app);
    await request(h.app)
      .post('/rks/v1/acme/issuers/pebble')
      .set('X-Vault-Token', admin)
      .send({ directory: pebble.directory, caBundle: pebble.tlsCa, contact: ['ops@example.com'], termsOfServiceAgreed: true })
      .expect(201);
  }, 120_000);
  afterAll(async () => {
    h?.close();
    port80?.close();
    await pebble?.stop();
  });

  describe('issuers', () => {
    it('registers an account, keeps its key in Vault and never shows it', async () => {
      const res = await request(h.app).get('/rks/v1/acme/issuers/pebble').set('X-Vault-Token', admin).expect(200);
      expect(res.body).toMatchObject({ name: 'pebble', directory: pebble.directory, contact: ['ops@example.com'], caBundle: true, status: 'valid', externalAccountBinding: false });
      expect(res.body.accountUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/my-account\//);
      expect(JSON.stringify(res.body)).not.toContain('PRIVATE KEY');
      const list = await request(h.app).get('/rks/v1/acme/issuers').set('X-Vault-Token', admin).expect(200);
      expect(list.body.map((i: { name: string }) => i.name)).toContain('pebble');
      expect(JSON.stringify(list.body)).not.toContain('PRIVATE KEY');
      const stored = await vaultRead('rks/data/acme/issuers/pebble');
      expect(stored.body.data.data.accountKey).toContain('PRIVATE KEY');
    });

    it('asks for the terms of service to be agreed, naming them; refuses what cannot work', async () => {
      const res = await request(h.app).post(`/rks/v1/acme/issuers/${uniq('tos')}`).set('X-Vault-Token', admin)
        .send({ directory: pebble.directory, caBundle: pebble.tlsCa }).expect(400);
      expect(res.body.errors[0]).toMatch(/termsOfServiceAgreed.*terms of service/);
      await request(h.app).post('/rks/v1/acme/issuers/rks-ca').set('X-Vault-Token', admin).send({ directory: pebble.directory, termsOfServiceAgreed: true }).expect(400);
      await request(h.app).post('/rks/v1/acme/issuers/pebble').set('X-Vault-Token', admin).send({ directory: pebble.directory, caBundle: pebble.tlsCa, termsOfServiceAgreed: true }).expect(409);
      await request(h.app).post(`/rks/v1/acme/issuers/${uniq('h')}`).set('X-Vault-Token', admin).send({ directory: 'http://acme.example.com/dir', termsOfServiceAgreed: true }).expect(400);
      // The directory's certificate is not trusted without the bundle: the CA cannot be reached.
      const untrusted = await request(h.app).post(`/rks/v1/acme/issuers/${uniq('u')}`).set('X-Vault-Token', admin).send({ directory: pebble.directory, termsOfServiceAgreed: true }).expect(502);
      expect(untrusted.body.code).toBe('upstream_failed');
      // Issuers are for administrators.
      const g = uniq('acg');
      const groupToken = await createGroup(h.app, admin, g);
      await request(h.app).get('/rks/v1/acme/issuers').set('X-Vault-Token', groupToken).expect(403);
    });

    it('deactivates an account at the CA; its secrets can no longer be created', async () => {
      const name = uniq('deact');
      await request(h.app).post(`/rks/v1/acme/issuers/${name}`).set('X-Vault-Token', admin)
        .send({ directory: pebble.directory, caBundle: pebble.tlsCa, termsOfServiceAgreed: true }).expect(201);
      const res = await request(h.app).post(`/rks/v1/acme/issuers/${name}/deactivate`).set('X-Vault-Token', admin).expect(200);
      expect(res.body).toMatchObject({ status: 'deactivated' });
      expect(Date.now() - Date.parse(res.body.deactivatedAt)).toBeGreaterThanOrEqual(0);
      expect(Date.now() - Date.parse(res.body.deactivatedAt)).toBeLessThan(60_000);
      const refused = await request(h.app).post(`/rks/v1/secret/${uniq('d')}.example.com/managed`).set('X-Vault-Token', admin).send({ issuer: name }).expect(400);
      expect(refused.body.errors[0]).toMatch(/deactivated/);
    });
  });

  describe('the challenge endpoint', () => {
    it('answers registered nodes only, and only tokens of orders in progress', async () => {
      const g = uniq('chg');
      const groupToken = await createGroup(h.app, admin, g);
      const { nodeToken } = await registerNode(h.app, groupToken, 'n1');
      const token = 'A'.repeat(43);
      await request(h.app).get(`/rks/v1/acme/http-01/${token}`).set('X-Vault-Token', nodeToken).expect(404);
      await request(h.app).get(`/rks/v1/acme/http-01/${token}`).set('X-Vault-Token', admin).expect(403);
      await request(h.app).get(`/rks/v1/acme/http-01/${token}`).set('X-Vault-Token', groupToken).expect(403);
      await request(h.app).get(`/rks/v1/acme/http-01/${token}`).expect(403);
      await request(h.app).get('/rks/v1/acme/http-01/short').set('X-Vault-Token', nodeToken).expect(400);
    });

    it('tells a node what to answer, never which name is being validated', async () => {
      const { nodeToken } = await registerNode(h.app, await createGroup(h.app, admin, uniq('chn')), 'n1');
      const token = `B${uniq('t').replace(/-/g, '_')}${'b'.repeat(20)}`;
      const expiresAt = new Date(Date.now() + 60_000).toISOString();
      const onboarded = `${uniq('secret-customer')}.example.com`;
      await vaultWrite(`rks/data/acme/challenges/${token}`, { data: { keyAuthorization: `${token}.thumb`, fqdn: onboarded, expiresAt } });
      await vaultWrite('rks/data/acme/challenges/_serial', { data: { at: new Date().toISOString() } }); // as rks publishes
      try {
        const one = await request(h.app).get(`/rks/v1/acme/http-01/${token}`).set('X-Vault-Token', nodeToken).expect(200);
        expect(one.body).toEqual({ keyAuthorization: `${token}.thumb`, expiresAt });
        const all = await request(h.app).get('/rks/v1/acme/http-01').set('X-Vault-Token', nodeToken).expect(200);
        expect(all.body.challenges).toContainEqual({ token, keyAuthorization: `${token}.thumb`, expiresAt });
        expect(JSON.stringify([one.body, all.body])).not.toContain(onboarded);
      } finally {
        await vaultWrite(`rks/metadata/acme/challenges/${token}`, undefined, 'DELETE');
        await vaultWrite('rks/data/acme/challenges/_serial', { data: { at: new Date().toISOString() } });
      }
    });

    it('a listing is kept while nothing changed (one read a request) and made anew as soon as a challenge is published or removed, on any instance', async () => {
      const { nodeToken } = await registerNode(h.app, await createGroup(h.app, admin, uniq('chl')), 'n1');
      const board = h.services.acme.challenges;
      const other = harness(); // another rks instance on the same Vault
      try {
        const tokenOf = (i: number) => `C${uniq('k').replace(/-/g, '_')}${String(i).repeat(20)}`;
        const listed = async (app = h.app) => ((await request(app).get('/rks/v1/acme/http-01').set('X-Vault-Token', nodeToken).expect(200)).body.challenges as { token: string }[]).map((c) => c.token);
        const expiresAt = new Date(Date.now() + 60_000).toISOString();
        const session = h.services.session;
        const [a, b] = [tokenOf(1), tokenOf(2)];
        await session.run((t) => board.publish(t, a, { keyAuthorization: `${a}.x`, fqdn: 'a.example.com', expiresAt }));
        expect(await listed()).toContain(a);
        // Nothing changed: asked again and again, the challenges are not listed again.
        const lists = async () => Number(/rks_vault_request_duration_seconds_count\{operation="kv\.list",status="200"\} (\d+)/.exec(await h.services.metrics.registry.metrics())?.[1] ?? 0);
        const before = await lists();
        for (let i = 0; i < 5; i++) expect(await listed()).toContain(a);
        expect(await lists()).toBe(before);
        // Published by the other instance: seen by this one's very next listing.
        await other.services.session.run((t) => other.services.acme.challenges.publish(t, b, { keyAuthorization: `${b}.x`, fqdn: 'b.example.com', expiresAt }));
        expect(await listed()).toEqual(expect.arrayContaining([a, b]));
        await session.run((t) => board.remove(t, a));
        expect(await listed(other.app)).not.toContain(a);
        expect(await listed()).not.toContain(a);
        await session.run((t) => board.remove(t, b));
      } finally {
        other.close();
      }
    });
  });

  it('a failed validation is retried with backoff, and the secret says why and when', async () => {
    const g = uniq('fail');
    const groupToken = await createGroup(h.app, admin, g);
    // No edge answers yet.
    onHttp = (_req, res) => void res.writeHead(404).end();
    const name = `${uniq('f')}.example.com`;
    const created = await request(h.app).post(`/rks/v1/secret/${name}/managed`).set('X-Vault-Token', admin).send({ issuer: 'pebble', ttl: 5 }).expect(202);
    expect(created.body).toMatchObject({ name, pending: true, managed: true, renewal: { issuer: 'pebble', failures: 0 } });
    expect(created.body.notAfter).toBeUndefined();
    // Nodes get 404 until it is issued; it is in the listing, marked pending.
    const list = await request(h.app).get('/rks/v1/secrets?limit=1000').set('X-Vault-Token', admin).expect(200);
    expect(list.body.secrets.find((s: { name: string }) => s.name === name)).toMatchObject({ pending: true });

    const t0 = Date.now();
    await h.services.managed.renewDue(t0);
    // Another test file's rks, renewing on this Vault, may have claimed it first: its attempt ends the same way.
    let info = await request(h.app).get(`/rks/v1/secret/${name}/info`).set('X-Vault-Token', admin).expect(200);
    for (let i = 0; i < 100 && info.body.renewal.inProgress; i++) {
      await new Promise((r) => setTimeout(r, 200));
      info = await request(h.app).get(`/rks/v1/secret/${name}/info`).set('X-Vault-Token', admin).expect(200);
    }
    expect(info.body).toMatchObject({ pending: true, renewal: { failures: 1 } });
    expect(info.body.renewal.lastError).toMatch(new RegExp(`validation of ${name.replace(/\./g, '\\.')} failed`));
    const next = Date.parse(info.body.renewal.nextAttempt);
    // Five minutes at least: a CA counts failed validations per name and hour (Let's Encrypt: 5).
    expect(next - t0).toBeGreaterThanOrEqual(299_000);
    // Its challenge is gone from Vault once the order failed.
    expect(await challengesOf(name)).toEqual([]);

    // Not due yet: nothing happens. Due, with the edge answering: issued.
    await h.services.managed.renewDue(Date.now());
    expect((await request(h.app).get(`/rks/v1/secret/${name}/info`).set('X-Vault-Token', admin)).body.renewal.failures).toBe(1);
    const { nodeToken } = await registerNode(h.app, groupToken, 'edge-f');
    onHttp = (req, res) => {
      const tok = /acme-challenge\/(.+)$/.exec(req.url ?? '')?.[1] ?? '';
      request(h.app).get(`/rks/v1/acme/http-01/${tok}`).set('X-Vault-Token', nodeToken).then((r) =>
        r.status === 200 ? res.writeHead(200).end(r.body.keyAuthorization) : res.writeHead(404).end(),
      );
    };
    // This name only: a pass with a clock ahead would take other suites' names on this Vault.
    await h.services.session.run((t) => (h.services.managed as unknown as { renew(t: string, f: string, at: number): Promise<void> }).renew(t, name, Math.floor((next + 1000) / 1000)));
    const issued = await request(h.app).get(`/rks/v1/secret/${name}/info`).set('X-Vault-Token', admin).expect(200);
    expect(issued.body.renewal.lastError).toBeUndefined();
    expect(issued.body.pending).toBeUndefined();
    expect(issued.body).toMatchObject({ sans: [`DNS:${name}`], keyType: 'EC P-256', chainLength: 2, ttl: 5, renewal: { issuer: 'pebble', failures: 0 } });
    expect(Math.abs(issued.body.renewal.lifetime - 30)).toBeLessThanOrEqual(1);
    expect(issued.body.issuer).toMatch(/Pebble Intermediate CA/);
    // This instance placed the order that succeeded (no other rks on this Vault could: it was not
    // due for another minute). The failed one may have been another instance's: they all renew.
    const metrics = (await request(h.app).get('/metrics')).text;
    expect(metrics).toMatch(/rks_acme_orders_total\{issuer="pebble",result="issued"\} 1\n/);
    expect(metrics).toMatch(/rks_managed_renewals_total\{issuer="pebble",result="renewed"\} 1\n/);
  }, 60_000);

  describe('issue, serve through an edge, renew', () => {
    let rks: ServedRks;
    let edgeNode: RksNode;
    let tlsEdge: tls.Server;

    beforeAll(async () => {
      rks = await serveRks({ managedCheckInterval: 1 });
    });
    afterAll(async () => {
      edgeNode?.stop();
      tlsEdge?.close();
      await rks?.stop();
    });

    it('a pending secret is issued with the edge answering HTTP-01, served over TLS, and renewed in the CA\'s renewal window (ARI), naming the certificate it replaces', async () => {
      const g = uniq('acme');
      const groupToken = await createGroup(rks.app, admin, g);
      edgeNode = new RksNode({ url: rks.url, groupToken, nodeId: 'edge-1', ca: rks.ca, backoffMs: { min: 200, max: 1000 } });
      await edgeNode.start();
      // The edge: HTTPS from the SDK, and its plain-HTTP port answering challenges through the SDK.
      onHttp = edgeNode.httpHandler;
      tlsEdge = tls.createServer({ SNICallback: edgeNode.sniCallback }, (s) => s.end('ok\n'));
      tlsEdge.on('tlsClientError', () => undefined);
      await new Promise<void>((r) => tlsEdge.listen(0, '127.0.0.1', r));
      const tlsPort = (tlsEdge.address() as AddressInfo).port;

      const name = `${uniq('www')}.example.com`;
      const alt = `alt-${name}`;
      fetched.length = 0;
      const started = Date.now();
      await request(rks.app).post(`/rks/v1/secret/${name}/managed`).set('X-Vault-Token', admin).send({ issuer: 'pebble', sans: [alt], ttl: 2 }).expect(202);
      const first = await until('the first certificate', async () => {
        const r = await request(rks.app).get(`/rks/v1/secret/${name}/info`).set('X-Vault-Token', admin);
        return r.body.pending ? undefined : r.body;
      }, 30_000);
      const issuedMs = Date.now() - started;
      expect([...first.sans].sort()).toEqual([`DNS:${alt}`, `DNS:${name}`].sort());
      // Pebble fetched both names' challenges from the edge, which asked rks.
      expect(fetched.filter((u) => u.startsWith('/.well-known/acme-challenge/')).length).toBeGreaterThanOrEqual(2);
      expect(pebble.dnsQueries.some((q) => q.startsWith(name))).toBe(true);

      await request(rks.app).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
      // Served once the edge knows of the association (within its revalidation bound).
      const served = await until('the edge serving it', async () => {
        const r = await handshake(tlsPort, name, pebbleRoot);
        return 'fingerprint' in r ? r : undefined;
      }, 15_000);
      expect(served).toMatchObject({ fingerprint: first.sha256Fingerprint });

      // Renewed in the CA's window by the background job; the edge serves the new one without a restart.
      const renewed = await until('a renewed certificate served by the edge', async () => {
        const r = await handshake(tlsPort, name, pebbleRoot);
        return 'fingerprint' in r && r.fingerprint !== first.sha256Fingerprint ? r : undefined;
      }, 40_000);
      const info = (await request(rks.app).get(`/rks/v1/secret/${name}/info`).set('X-Vault-Token', admin).expect(200)).body;
      expect(renewed).toMatchObject({ fingerprint: info.sha256Fingerprint });
      // The previous version stays for a rollback; no challenge is left behind.
      const meta = await vaultRead(`rks/metadata/managed/secrets/${name}`);
      expect(Number(meta.body.data.current_version)).toBe(2);
      expect(await challengesOf(name)).toEqual([]);
      // The renewal followed the CA's renewal information (RFC 9773) and named the certificate it replaced.
      expect(pebble.log()).toMatch(/ARI: order "[\w-]+" is a replacement of/);
      const state = (await vaultRead(`rks/data/managed/state/${name}`)).body.data.data;
      expect(state.ariAt).toBeGreaterThan(Date.now() / 1000 + 3600);
      expect(state.renewAt).toBeLessThanOrEqual(Date.parse(info.notAfter) / 1000 - 3);
      console.log(`ACME: first certificate stored ${issuedMs} ms after the request; renewal served ${Date.now() - started} ms after it`);
    }, 90_000);
  });
});
