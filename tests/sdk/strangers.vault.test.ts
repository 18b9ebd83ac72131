import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { RksNode } from '../../src/sdk';
import { edge, handshake } from '../support/edge';
import { Harness, adminToken, harness } from '../support/harness';
import { issue } from '../support/pki';
import { createGroup, uniq } from '../support/rks';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An edge faces the internet: scanners open TLS handshakes with made-up server names all day.
 * The edge answers them from the list of names it may serve, so they cost rks (and Vault)
 * nothing, however many there are.
 */
describe('strangers handshaking with an edge', () => {
  let h: Harness;
  let server: http.Server;
  let url: string;
  /** Requests rks received, by path. */
  const seen: string[] = [];
  /** The If-None-Match of each request, and its answer's status. */
  const revalidations: { sent?: string; status: number }[] = [];

  beforeAll(async () => {
    h = harness();
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.on('finish', () => revalidations.push({ sent: req.headers['if-none-match'] as string | undefined, status: res.statusCode }));
      h.app(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    h.close();
  });

  it('1,000 made-up names, 50 at a time, cost rks at most a few list refreshes; known names are still served and new ones found', async () => {
    const admin = await adminToken(h.app);
    const g = uniq('st');
    const groupToken = await createGroup(h.app, admin, g);
    const ca = await issue({ name: `ca ${g}`, ca: true });
    const push = async (name: string) => {
      const leaf = await issue({ name, dns: [name], issuer: ca });
      await request(h.app).post(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin).send({ data: { certificate: leaf.certPem, private_key: leaf.keyPem, meta: { ttl: 300 } } }).expect(201);
      await request(h.app).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    };
    const known = `www.${g}.example.com`;
    await push(known);
    const node = new RksNode({ url, groupToken, nodeId: 'edge-1', revalidateMs: 0 });
    await node.start();
    const e = await edge(node);
    try {
      expect(await handshake(e.port, known, ca.certPem)).toHaveProperty('fingerprint');

      seen.length = 0;
      const names = Array.from({ length: 1000 }, () => `${randomBytes(6).toString('hex')}.${g}.example.com`);
      const started = Date.now();
      for (let i = 0; i < names.length; i += 50) {
        const results = await Promise.all(names.slice(i, i + 50).map((n) => handshake(e.port, n, ca.certPem)));
        for (const r of results) expect(r).toHaveProperty('failed');
      }
      const seconds = (Date.now() - started) / 1000;
      // One list refresh at most every two seconds, whatever the number of names (what changed since the list held).
      expect(seen.every((s) => s === 'GET /rks/v1/node/secrets?changes=true')).toBe(true);
      expect(seen.length).toBeLessThanOrEqual(Math.ceil(seconds / 2) + 1);
      expect((node as unknown as { keys: { failures: Map<string, unknown> } }).keys.failures.size).toBe(0);
      expect(await handshake(e.port, known, ca.certPem)).toHaveProperty('fingerprint');

      // An edge that is up to date revalidates with its list's ETag and gets 304, no body.
      revalidations.length = 0;
      await node.revalidate();
      expect(revalidations).toEqual([{ sent: expect.stringMatching(/^"/), status: 304 }]);

      // A name associated since the last list is found by the next handshake for it.
      const added = `new.${g}.example.com`;
      await push(added);
      await sleep(2100);
      expect(await handshake(e.port, added, ca.certPem)).toHaveProperty('fingerprint');

      // The group token is rotated: the edge's registration is refused, and strangers'
      // handshakes meanwhile do not turn into registrations as fast as they come.
      await request(h.app).put(`/rks/v1/group/${g}/grouptoken`).set('X-Vault-Token', admin).expect(200);
      await node.revalidate();
      seen.length = 0;
      for (let i = 0; i < 12; i++) {
        await Promise.all(Array.from({ length: 20 }, () => handshake(e.port, `${randomBytes(6).toString('hex')}.${g}.example.com`, ca.certPem)));
        await sleep(500);
      }
      // Over 6 s, 240 handshakes: a few tries (the list at most every 2 s, registration backing
      // off from 1 s, doubling), not one a handshake or a batch.
      expect(seen.filter((s) => s === 'POST /rks/v1/node').length).toBeLessThanOrEqual(3);
    } finally {
      e.close();
      node.stop();
    }
  });
});
