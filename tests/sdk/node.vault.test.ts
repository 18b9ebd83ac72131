import request from 'supertest';
import { RksNode } from '../../src/sdk';
import { MockCallbackServer, startMockCallbackServer } from '../../mock-callback-server/server';
import { ServedRks, adminToken, serveRks } from '../support/harness';
import { Chain, issue } from '../support/pki';
import { edge, handshake } from '../support/edge';
import { createGroup, uniq, vaultAs } from '../support/rks';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const fp = (c: Chain) => new (require('node:crypto').X509Certificate)(c.leaf.certPem).fingerprint256 as string;

describe('node SDK and an edge, end to end', () => {
  let rks: ServedRks;
  let admin: string;
  const root = () => rks.app;

  beforeAll(async () => {
    rks = await serveRks();
    admin = await adminToken(rks.app);
  });
  afterAll(() => rks.stop());

  /** A group with its own names, all under one test root CA. */
  async function world(names: string[], ttl = 300) {
    const g = uniq('e2e');
    const groupToken = await createGroup(root(), admin, g);
    const ca = await issue({ name: `ca ${g}`, ca: true });
    const chains: Record<string, Chain> = {};
    for (const name of names) {
      const leaf = await issue({ name, dns: [name], issuer: ca });
      chains[name] = { root: ca, intermediate: ca, leaf, certificate: leaf.certPem + ca.certPem, privateKey: leaf.keyPem };
      await request(root()).post(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin)
        .send({ data: { certificate: chains[name].certificate, private_key: leaf.keyPem, meta: { ttl } } }).expect(201);
    }
    return { g, groupToken, ca, chains };
  }

  const nodeFor = (groupToken: string, nodeId = 'edge-1') =>
    new RksNode({ url: rks.url, groupToken, nodeId, ca: rks.ca, backoffMs: { min: 200, max: 1000 } });

  it('presents the right certificate for each associated name and fails the handshake for others', async () => {
    const base = `${uniq('a')}.example.com`;
    const w = await world([`www.${base}`, `api.${base}`, `*.img.${base}`, `secret.${base}`]);
    for (const n of [`www.${base}`, `api.${base}`, `*.img.${base}`]) {
      await request(root()).post(`/rks/v1/group/${w.g}/secrets/${n}`).set('X-Vault-Token', admin).expect(201);
    }
    const node = nodeFor(w.groupToken);
    await node.start();
    const e = await edge(node);
    try {
      const ca = w.ca.certPem;
      expect(await handshake(e.port, `www.${base}`, ca)).toMatchObject({ subject: `www.${base}` });
      expect(await handshake(e.port, `api.${base}`, ca)).toMatchObject({ subject: `api.${base}` });
      // A wildcard matches exactly one label.
      expect(await handshake(e.port, `a1.img.${base}`, ca)).toMatchObject({ subject: `*.img.${base}` });
      expect(await handshake(e.port, `x.a1.img.${base}`, ca)).toHaveProperty('failed');
      // Stored but not associated, and not stored at all.
      expect(await handshake(e.port, `secret.${base}`, ca)).toHaveProperty('failed');
      expect(await handshake(e.port, `nothing.${base}`, ca)).toHaveProperty('failed');
      expect(node.cached().sort()).toEqual([`*.img.${base}`, `api.${base}`, `www.${base}`].sort());
    } finally {
      e.close();
      node.stop();
    }
  });

  it('collapses concurrent handshakes for a cold name into one fetch', async () => {
    const name = `${uniq('c')}.example.com`;
    const w = await world([name]);
    await request(root()).post(`/rks/v1/group/${w.g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    const node = nodeFor(w.groupToken);
    const fetched: string[] = [];
    node.on('fetched', (f) => fetched.push(f.name));
    await node.start();
    const e = await edge(node);
    try {
      const results = await Promise.all(Array.from({ length: 20 }, () => handshake(e.port, name, w.ca.certPem)));
      expect(results.every((r) => 'fingerprint' in r)).toBe(true);
      expect(fetched).toEqual([name]);
    } finally {
      e.close();
      node.stop();
    }
  });

  it('keeps a key for at most its TTL, then serves the updated certificate without a restart', async () => {
    const name = `${uniq('u')}.example.com`;
    const w = await world([name], 2);
    await request(root()).post(`/rks/v1/group/${w.g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    const node = nodeFor(w.groupToken);
    const expired: string[] = [];
    node.on('expired', (x) => expired.push(x.name));
    await node.start();
    const e = await edge(node);
    try {
      const first = await handshake(e.port, name, w.ca.certPem);
      expect(first).toMatchObject({ fingerprint: fp(w.chains[name]) });
      const next = await issue({ name, dns: [name], issuer: w.ca });
      await request(root()).put(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin)
        .send({ data: { certificate: next.certPem + w.ca.certPem, private_key: next.keyPem, meta: { ttl: 2 } } }).expect(200);
      // Within the TTL the edge may still present the old one...
      expect(await handshake(e.port, name, w.ca.certPem)).toMatchObject({ fingerprint: fp(w.chains[name]) });
      await sleep(2300);
      // ...after it, the key is gone from memory and the new certificate is served.
      expect(expired).toContain(name);
      const after = await handshake(e.port, name, w.ca.certPem);
      expect(after).toMatchObject({ fingerprint: new (require('node:crypto').X509Certificate)(next.certPem).fingerprint256 });
    } finally {
      e.close();
      node.stop();
    }
  });

  it('after dissociation, new handshakes fail within the TTL', async () => {
    const name = `${uniq('d')}.example.com`;
    const w = await world([name], 2);
    await request(root()).post(`/rks/v1/group/${w.g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    const node = nodeFor(w.groupToken);
    await node.start();
    const e = await edge(node);
    try {
      expect(await handshake(e.port, name, w.ca.certPem)).toHaveProperty('fingerprint');
      await request(root()).delete(`/rks/v1/group/${w.g}/secrets/${name}`).set('X-Vault-Token', admin).expect(204);
      await sleep(2300);
      expect(await handshake(e.port, name, w.ca.certPem)).toHaveProperty('failed');
      expect(node.cached()).toEqual([]);
    } finally {
      e.close();
      node.stop();
    }
  });

  it('after the group token is rotated, the node cannot come back and drops its keys', async () => {
    const name = `${uniq('r')}.example.com`;
    const w = await world([name], 60);
    await request(root()).post(`/rks/v1/group/${w.g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    const other = `${uniq('o')}.example.com`;
    const node = nodeFor(w.groupToken);
    await node.start();
    const e = await edge(node);
    try {
      expect(await handshake(e.port, name, w.ca.certPem)).toHaveProperty('fingerprint');
      await request(root()).put(`/rks/v1/group/${w.g}/grouptoken`).set('X-Vault-Token', admin).expect(200);
      // A stranger's name costs rks nothing; the next revalidation finds the token dead, fails
      // to register again and forgets every key.
      expect(await handshake(e.port, other, w.ca.certPem)).toHaveProperty('failed');
      await node.revalidate();
      expect(node.cached()).toEqual([]);
      expect(await handshake(e.port, name, w.ca.certPem)).toHaveProperty('failed');
    } finally {
      e.close();
      node.stop();
    }
  });

  describe('revoking a node', () => {
    let mock: MockCallbackServer;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-e2e-'));
    beforeAll(async () => {
      const ca = await issue({ name: 'manager CA', ca: true });
      const server = await issue({ name: 'manager', issuer: ca, ips: ['127.0.0.1'] });
      fs.writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
      mock = await startMockCallbackServer({ cert: server.certPem, key: server.keyPem, clientId: 'c', clientSecret: 's', allowed: ['edge-1'] });
    });
    afterAll(async () => {
      await mock.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('with the manager refusing it too, its keys stop being served within the revalidation interval', async () => {
      const managed = await serveRks({ callbackTimeout: 2, callbackCaFile: [path.join(dir, 'ca.pem')] });
      try {
        const g = uniq('rev');
        const groupToken = await createGroup(managed.app, admin, g, {
          callbackURL: mock.callbackURL,
          oauthURL: mock.oauthURL,
          oauthClientID: 'c',
          oauthClientSecret: 's',
        });
        const ca = await issue({ name: 'site CA', ca: true });
        const name = `${uniq('m')}.example.com`;
        const leaf = await issue({ name, dns: [name], issuer: ca });
        await request(managed.app).post(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin)
          .send({ data: { certificate: leaf.certPem, private_key: leaf.keyPem, meta: { ttl: 300 } } }).expect(201);
        await request(managed.app).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
        const node = new RksNode({ url: managed.url, groupToken, nodeId: 'edge-1', ca: managed.ca, backoffMs: { min: 200, max: 1000 }, revalidateMs: 500 });
        await node.start();
        const e = await edge(node);
        try {
          expect(await handshake(e.port, name, ca.certPem)).toHaveProperty('fingerprint');
          mock.allowed.delete('edge-1');
          await request(managed.app).delete(`/rks/v1/group/${g}/nodes/edge-1`).set('X-Vault-Token', admin).expect(204);
          // Keys live 300 s in the edge; the revocation reaches it at its next revalidation.
          await sleep(1500);
          expect(await handshake(e.port, name, ca.certPem)).toHaveProperty('failed');
          expect(node.cached()).toEqual([]);
        } finally {
          e.close();
          node.stop();
        }
      } finally {
        await managed.stop();
      }
    });

    it('without a callback, a revoked node stays out though it still has the group token, until an administrator allows it back', async () => {
      const name = `${uniq('n')}.example.com`;
      const w = await world([name], 1);
      await request(root()).post(`/rks/v1/group/${w.g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
      const node = nodeFor(w.groupToken);
      const errors: string[] = [];
      node.on('error', (err) => errors.push(err.message));
      await node.start();
      await request(root()).delete(`/rks/v1/group/${w.g}/nodes/edge-1`).set('X-Vault-Token', admin).expect(204);
      expect(await node.secret(name)).toBeNull();
      expect(errors.join()).toContain('was revoked by an administrator');
      const again = await request(root()).post('/rks/v1/node').set('X-Vault-Token', w.groupToken).set('X-LCDN-nodeId', 'edge-1').expect(403);
      expect(again.body).toEqual({ errors: [expect.stringContaining('was revoked by an administrator')], code: 'node_revoked' });
      // Other nodes of the group are not affected; the revoked one is listed as such.
      await request(root()).post('/rks/v1/node').set('X-Vault-Token', w.groupToken).set('X-LCDN-nodeId', 'edge-2').expect(201);
      const listed = (await request(root()).get(`/rks/v1/group/${w.g}/nodes`).set('X-Vault-Token', admin).expect(200)).body.nodes;
      expect(listed).toEqual([{ nodeId: 'edge-1', revokedAt: expect.any(String) }, { nodeId: 'edge-2', registeredAt: expect.any(String), seenAt: expect.any(String) }]);
      await request(root()).post(`/rks/v1/group/${w.g}/nodes/edge-1/allow`).set('X-Vault-Token', admin).expect(204);
      await request(root()).post(`/rks/v1/group/${w.g}/nodes/edge-1/allow`).set('X-Vault-Token', admin).expect(404);
      await sleep(1100); // the edge's backoff after the refusal
      expect(await node.secret(name)).not.toBeNull();
      node.stop();
    });
  });

  it('a restart of rks does not disturb an edge that holds valid keys', async () => {
    const name = `${uniq('s')}.example.com`;
    const w = await world([name], 60);
    await request(root()).post(`/rks/v1/group/${w.g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    const node = nodeFor(w.groupToken);
    const errors: Error[] = [];
    node.on('error', (err) => errors.push(err));
    await node.start();
    const e = await edge(node);
    try {
      expect(await handshake(e.port, name, w.ca.certPem)).toHaveProperty('fingerprint');
      await rks.stop();
      expect(await handshake(e.port, name, w.ca.certPem)).toMatchObject({ subject: name });
      expect(await handshake(e.port, `cold-${name}`, w.ca.certPem)).toHaveProperty('failed');
      await node.revalidate();
      expect(errors.length).toBeGreaterThan(0);
      expect(await handshake(e.port, name, w.ca.certPem)).toMatchObject({ subject: name });
      await rks.start();
      expect(await handshake(e.port, name, w.ca.certPem)).toMatchObject({ subject: name });
    } finally {
      e.close();
      node.stop();
    }
  });

  it('renews its node token before it runs out and registers again once it is gone', async () => {
    const short = await serveRks({ nodeTokenPeriod: 3 });
    try {
      const g = uniq('ren');
      const groupToken = await createGroup(short.app, admin, g);
      const node = new RksNode({ url: short.url, groupToken, nodeId: 'n', ca: short.ca, renewAt: 0.4 });
      const events: string[] = [];
      node.on('registered', () => events.push('registered'));
      node.on('renewed', () => events.push('renewed'));
      await node.start();
      await sleep(2600);
      expect(events.filter((x) => x === 'renewed').length).toBeGreaterThanOrEqual(1);
      // Kill every node token of the group behind the SDK's back: it registers again by itself.
      await vaultAs(process.env.RKS_TEST_ROOT_TOKEN!, 'POST', `sys/leases/revoke-prefix/auth/token/create/rks_node_${g}_n`, {});
      await sleep(1500);
      expect(events.filter((x) => x === 'registered').length).toBeGreaterThanOrEqual(2);
      node.stop();
    } finally {
      await short.stop();
    }
  });

  it('never keeps a key past its certificate\'s end, and takes the 410 of an expired one as a refusal', async () => {
    const name = `${uniq('x')}.example.com`;
    const g = uniq('x');
    const groupToken = await createGroup(root(), admin, g);
    const ca = await issue({ name: `ca ${g}`, ca: true });
    const leaf = await issue({ name, dns: [name], issuer: ca, notAfter: new Date(Date.now() + 3000) });
    await request(root()).post(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin)
      .send({ data: { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem, meta: { ttl: 300 } } }).expect(201);
    await request(root()).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    const node = nodeFor(groupToken);
    const refused: { name: string; status: number }[] = [];
    const errors: Error[] = [];
    node.on('refused', (r) => refused.push(r));
    node.on('error', (e) => errors.push(e));
    await node.start();
    try {
      const held = await node.secret(name);
      expect(held!.ttl).toBeLessThanOrEqual(3);
      await sleep(3500);
      expect(node.cached()).not.toContain(name);
      expect(await node.secret(name)).toBeNull();
      expect(refused).toEqual([{ name, status: 410 }]);
      expect(errors).toEqual([]);
    } finally {
      node.stop();
    }
  });

  it('an edge serves a managed secret across its renewals without a restart', async () => {
    // An rks that looks for due renewals every second.
    const renewing = await serveRks({ managedCheckInterval: 1 });
    try {
      const name = `${uniq('mg')}.example.com`;
      const g = uniq('mg');
      const groupToken = await createGroup(renewing.app, admin, g);
      // 30 s certificates renewed 20 s before their end: a new one every 10 s; nodes keep keys 2 s.
      await request(renewing.app).post(`/rks/v1/secret/${name}/managed`).set('X-Vault-Token', admin).send({ lifetime: 30, renewBefore: 20, ttl: 2 }).expect(201);
      await request(renewing.app).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
      const node = new RksNode({ url: renewing.url, groupToken, nodeId: 'edge-m', ca: renewing.ca, backoffMs: { min: 200, max: 1000 } });
      await node.start();
      const e = await edge(node);
      try {
        const seen = new Set<string>();
        const deadline = Date.now() + 25_000;
        while (seen.size < 3 && Date.now() < deadline) {
          const r = await handshake(e.port, name, renewing.ca);
          expect(r).toHaveProperty('fingerprint');
          seen.add((r as { fingerprint: string }).fingerprint);
          await sleep(500);
        }
        // The first certificate and two renewals, each served by the same edge process.
        expect(seen.size).toBe(3);
      } finally {
        e.close();
        node.stop();
      }
    } finally {
      await renewing.stop();
    }
  }, 40_000);
});
