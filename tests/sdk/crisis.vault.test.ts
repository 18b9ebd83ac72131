import tls from 'node:tls';
import request from 'supertest';
import { RksNode } from '../../src/sdk';
import { edge, handshake, resume, sessionFrom } from '../support/edge';
import { ServedRks, adminToken, serveRks } from '../support/harness';
import { issue } from '../support/pki';
import { createGroup, pushSecret, registerNode, uniq } from '../support/rks';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The bound these tests hold the edge to: its revalidation interval plus one request. */
const INTERVAL_MS = 500;
const BOUND_MS = 2000;

/**
 * Crisis controls against a running edge, with real TLS handshakes: keys that live 300 s in the
 * edge's memory stop being served within the revalidation interval of the admin's action, not
 * at the end of their TTL.
 */
describe('crisis controls reach a running edge within seconds', () => {
  let rks: ServedRks;
  let admin: string;

  beforeAll(async () => {
    rks = await serveRks();
    admin = await adminToken(rks.app);
  });
  afterAll(() => rks.stop());

  /** A group, its edge (SDK + TLS server) holding `names` with 300 s keys, all served once. */
  async function world(names: string[]) {
    const g = uniq('cr');
    let groupToken = await createGroup(rks.app, admin, g);
    const ca = await issue({ name: `ca ${g}`, ca: true });
    for (const name of names) {
      const leaf = await issue({ name, dns: [name], issuer: ca });
      await request(rks.app).post(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin)
        .send({ data: { certificate: leaf.certPem, private_key: leaf.keyPem, meta: { ttl: 300 } } }).expect(201);
      await request(rks.app).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    }
    // The group token comes from a provider, as `rks edge --group-token-file` reads its file.
    const node = new RksNode({ url: rks.url, groupToken: () => groupToken, nodeId: 'edge-1', ca: rks.ca, revalidateMs: INTERVAL_MS, backoffMs: { min: 100, max: 500 } });
    const revoked: string[][] = [];
    node.on('revoked', (r) => revoked.push(r.names));
    await node.start();
    const e = await edge(node);
    for (const name of names) expect(await handshake(e.port, name, ca.certPem)).toHaveProperty('fingerprint');
    return {
      g, ca: ca.certPem, node, e, revoked, groupToken: async () => groupToken,
      setGroupToken: (t: string) => (groupToken = t),
      close: () => { e.close(); node.stop(); },
    };
  }

  /** Milliseconds until a handshake for `name` fails (or the limit passes). */
  async function untilRefused(port: number, name: string, ca: string, limitMs = 10_000): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < limitMs) {
      if ('failed' in (await handshake(port, name, ca))) return Date.now() - started;
      await sleep(50);
    }
    return Infinity;
  }
  const measured: string[] = [];
  afterAll(() => console.log(`crisis controls: handshakes refused after ${measured.join(', ')} (interval ${INTERVAL_MS} ms)`));

  it('a dissociated secret is dropped within the interval; the group\'s other keys keep serving', async () => {
    const [a, b] = [`${uniq('d')}.example.com`, `${uniq('k')}.example.com`];
    const w = await world([a, b]);
    try {
      const before = await handshake(w.e.port, b, w.ca);
      const session = await sessionFrom(w.e.port, a, w.ca);
      expect(await resume(w.e.port, a, w.ca, session)).toEqual({ resumed: true });
      // A connection kept open for each name: a's ends with its withdrawal, b's stays.
      const [openA, openB] = await Promise.all(
        [a, b].map((n) => new Promise<tls.TLSSocket>((r) => { const c = tls.connect({ port: w.e.port, host: '127.0.0.1', servername: n, ca: w.ca }, () => r(c.resume())); })),
      );
      const closedA = new Promise<void>((r) => openA!.once('close', () => r()));
      await request(rks.app).delete(`/rks/v1/group/${w.g}/secrets/${a}`).set('X-Vault-Token', admin).expect(204);
      await closedA;
      expect(openB!.destroyed).toBe(false);
      openB!.destroy();
      const ms = await untilRefused(w.e.port, a, w.ca);
      measured.push(`dissociate ${ms} ms`);
      expect(ms).toBeLessThan(BOUND_MS);
      // A client that kept a session ticket does not get around it: the SNI callback runs on resumption too.
      expect(await resume(w.e.port, a, w.ca, session)).toHaveProperty('failed');
      expect(await handshake(w.e.port, b, w.ca)).toEqual(before);
      expect(w.revoked).toEqual([[a]]);
      // Deleting it now (it is in no group) changes nothing more for the edge.
      await request(rks.app).delete(`/rks/v1/secret/${a}`).set('X-Vault-Token', admin).expect(204);
      expect(await handshake(w.e.port, b, w.ca)).toEqual(before);
    } finally {
      w.close();
    }
  });

  it('a replaced key reaches the edge within the interval, with no gap: the old key until the new one, then only the new one', async () => {
    const name = `${uniq('up')}.example.com`;
    const other = `${uniq('up')}.example.com`;
    const w = await world([name, other]);
    try {
      const before = await handshake(w.e.port, name, w.ca);
      const keep = await handshake(w.e.port, other, w.ca);
      const replaced: string[][] = [];
      w.node.on('replaced', ({ names }) => replaced.push(names));
      // A key is replaced (a compromised one, say), well within its 300 s TTL.
      const ca2 = await issue({ name: 'other CA', ca: true });
      const leaf = await issue({ name, dns: [name], issuer: ca2 });
      await request(rks.app).put(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin)
        .send({ data: { certificate: leaf.certPem, private_key: leaf.keyPem, meta: { ttl: 300 } } }).expect(200);
      const started = Date.now();
      const seen: string[] = [];
      let after: Awaited<ReturnType<typeof handshake>> | undefined;
      while (Date.now() - started < 10_000) {
        const h = await handshake(w.e.port, name, [w.ca, ca2.certPem].join('\n'));
        expect(h).toHaveProperty('fingerprint');
        const fp = (h as { fingerprint: string }).fingerprint;
        if (seen[seen.length - 1] !== fp) seen.push(fp);
        if (fp !== (before as { fingerprint: string }).fingerprint) {
          after = h;
          break;
        }
        await sleep(50);
      }
      expect(Date.now() - started).toBeLessThan(BOUND_MS);
      expect(seen).toEqual([(before as { fingerprint: string }).fingerprint, (after as { fingerprint: string }).fingerprint]);
      expect(replaced).toEqual([[name]]);
      // Only the new one from now on; the group's other key untouched.
      for (let i = 0; i < 5; i++) expect(await handshake(w.e.port, name, ca2.certPem)).toEqual(after);
      expect(await handshake(w.e.port, other, w.ca)).toEqual(keep);
      expect(w.revoked).toEqual([]);
    } finally {
      w.close();
    }
  });

  it("an edge holding an older list is told what changed since, in a few hundred bytes whatever the group's size", async () => {
    const one = `${uniq('d1')}.example.com`;
    const small = await world([one]);
    const names = Array.from({ length: 60 }, () => `${uniq('dn')}.example.com`);
    const big = await world(names);
    try {
      const deltaBytes = async (w: typeof small, listed: string[]) => {
        const { nodeToken } = await registerNode(rks.app, await w.groupToken(), 'edge-delta');
        const first = await request(rks.app).get('/rks/v1/node/secrets?changes=true').set('X-Vault-Token', nodeToken).expect(200);
        expect(first.body.secrets.sort()).toEqual([...listed].sort());
        // One name added, one replaced.
        const added = `${uniq('dz')}.example.com`;
        await pushSecret(rks.app, admin, added);
        await request(rks.app).post(`/rks/v1/group/${w.g}/secrets/${added}`).set('X-Vault-Token', admin).expect(201);
        const leaf = await issue({ name: listed[0]!, dns: [listed[0]!], issuer: await issue({ name: 'ca2', ca: true }) });
        await request(rks.app).put(`/rks/v1/secret/${listed[0]}`).set('X-Vault-Token', admin).send({ data: { certificate: leaf.certPem, private_key: leaf.keyPem } }).expect(200);
        await sleep(1100); // the group's list is cached a second
        const delta = await request(rks.app).get('/rks/v1/node/secrets?changes=true').set('X-Vault-Token', nodeToken).set('If-None-Match', first.headers.etag).expect(200);
        expect(delta.body.secrets).toBeUndefined();
        expect(delta.body.changes).toEqual({ added: [added], removed: [], replaced: [listed[0]] });
        // Without the parameter: the whole list, as always.
        const whole = await request(rks.app).get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).set('If-None-Match', first.headers.etag).expect(200);
        expect(whole.body.secrets.sort()).toEqual([...listed, added].sort());
        expect(whole.body.changes).toBeUndefined();
        // A made-up ETag: the whole list, and what the edge holds may be stale.
        const forged = await request(rks.app).get('/rks/v1/node/secrets?changes=true').set('X-Vault-Token', nodeToken).set('If-None-Match', '"AAAAAAAAAAAAAAAAAAAAAA.1"').expect(200);
        expect(forged.body).toMatchObject({ stale: true, secrets: expect.arrayContaining([added]) });
        return Buffer.byteLength(delta.text);
      };
      const [a, b] = [await deltaBytes(small, [one]), await deltaBytes(big, names)];
      expect(a).toBeLessThan(400);
      expect(Math.abs(a - b)).toBeLessThan(20);
    } finally {
      small.close();
      big.close();
    }
  }, 60_000);

  it('a rotated group token ends every key at once; the edge comes back with the new token', async () => {
    const name = `${uniq('rot')}.example.com`;
    const w = await world([name]);
    try {
      const rotated = await request(rks.app).put(`/rks/v1/group/${w.g}/grouptoken`).set('X-Vault-Token', admin).expect(200);
      const ms = await untilRefused(w.e.port, name, w.ca);
      measured.push(`rotate ${ms} ms`);
      expect(ms).toBeLessThan(BOUND_MS);
      expect(w.node.cached()).toEqual([]);
      // The new token reaches the edge (a rewritten token file): it registers again and serves.
      w.setGroupToken(rotated.body.groupToken);
      let served = false;
      for (let i = 0; i < 40 && !served; i++) {
        served = 'fingerprint' in (await handshake(w.e.port, name, w.ca));
        if (!served) await sleep(100);
      }
      expect(served).toBe(true);
    } finally {
      w.close();
    }
  });

  it('a deleted group ends every key at once', async () => {
    const names = [`${uniq('gd')}.example.com`, `${uniq('gd')}.example.com`];
    const w = await world(names);
    try {
      await request(rks.app).delete(`/rks/v1/group/${w.g}`).set('X-Vault-Token', admin).expect(204);
      for (const n of names) {
        const ms = await untilRefused(w.e.port, n, w.ca);
        measured.push(`group delete ${ms} ms`);
        expect(ms).toBeLessThan(BOUND_MS);
      }
      expect(w.node.cached()).toEqual([]);
    } finally {
      w.close();
    }
  });

  it('an edge that is up to date revalidates with one small request: 304 and no body, until the list changes', async () => {
    const name = `${uniq('et')}.example.com`;
    const w = await world([name]);
    try {
      const { nodeToken } = await registerNode(rks.app, await w.groupToken(), 'edge-etag');
      const first = await request(rks.app).get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).expect(200);
      const etag = first.headers.etag as string;
      expect(etag).toMatch(/^"[A-Za-z0-9_-]{22}\.\d+"$/);
      const same = await request(rks.app).get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).set('If-None-Match', etag).expect(304);
      expect(same.text ?? '').toBe('');
      expect(same.headers.etag).toBe(etag);
      const added = `${uniq('et2')}.example.com`;
      await pushSecret(rks.app, admin, added);
      await request(rks.app).post(`/rks/v1/group/${w.g}/secrets/${added}`).set('X-Vault-Token', admin).expect(201);
      await sleep(1100); // the group's list is cached a second
      const changed = await request(rks.app).get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).set('If-None-Match', etag).expect(200);
      expect(changed.headers.etag).not.toBe(etag);
      expect(changed.body.secrets).toEqual([name, added].sort());
    } finally {
      w.close();
    }
  });

  it("a list one node's token read is no one else's: after a restart, A revalidates (304) and registers again, B still gets its list", async () => {
    const name = `${uniq('own')}.example.com`;
    const w = await world([name]);
    try {
      const gt = await w.groupToken();
      const a = await registerNode(rks.app, gt, 'node-a');
      const b = await registerNode(rks.app, gt, 'node-b');
      const etag = (await request(rks.app).get('/rks/v1/node/secrets').set('X-Vault-Token', a.nodeToken).expect(200)).headers.etag as string;
      await rks.stop();
      await rks.start(); // no list remembered
      await request(rks.app).get('/rks/v1/node/secrets').set('X-Vault-Token', a.nodeToken).set('If-None-Match', etag).expect(304);
      await registerNode(rks.app, gt, 'node-a'); // A's first token is revoked
      for (const wait of [0, 1100]) {
        await sleep(wait); // within the second the group's version is remembered, and after it
        const listed = await request(rks.app).get('/rks/v1/node/secrets').set('X-Vault-Token', b.nodeToken);
        expect([listed.status, listed.body.secrets, listed.headers.etag]).toEqual([200, [name], etag]);
      }
      // A's dead token is still refused: what others read does not admit it either.
      await request(rks.app).get('/rks/v1/node/secrets').set('X-Vault-Token', a.nodeToken).expect(403);
      expect(w.revoked).toEqual([]);
    } finally {
      w.close();
    }
  });

  it('an edge that restarts (registers again) after a revalidation comes back serving; the group\'s other edges never stop', async () => {
    const name = `${uniq('rs')}.example.com`;
    const w = await world([name]);
    const other = new RksNode({ url: rks.url, groupToken: w.groupToken, nodeId: 'edge-2', ca: rks.ca, revalidateMs: INTERVAL_MS, backoffMs: { min: 100, max: 500 } });
    const otherRevoked: string[][] = [];
    other.on('revoked', (r) => otherRevoked.push(r.names));
    await other.start();
    const otherEdge = await edge(other);
    let again: RksNode | undefined;
    try {
      await rks.stop();
      await rks.start();
      // Both running edges revalidate with their ETag (304) on the restarted rks.
      await sleep(INTERVAL_MS * 3);
      w.close(); // edge-1 goes down, and comes back: a new registration revokes its old token
      again = new RksNode({ url: rks.url, groupToken: w.groupToken, nodeId: 'edge-1', ca: rks.ca, revalidateMs: INTERVAL_MS, backoffMs: { min: 100, max: 500 } });
      await again.start();
      const restarted = await edge(again);
      try {
        for (let i = 0; i < 8; i++) {
          expect(await handshake(restarted.port, name, w.ca)).toHaveProperty('fingerprint');
          expect(await handshake(otherEdge.port, name, w.ca)).toHaveProperty('fingerprint');
          await sleep(INTERVAL_MS / 2);
        }
      } finally {
        restarted.close();
      }
      expect(otherRevoked).toEqual([]);
    } finally {
      again?.stop();
      otherEdge.close();
      other.stop();
    }
  });

  it('the endpoint answers nodes only', async () => {
    const name = `${uniq('ep')}.example.com`;
    const w = await world([name]);
    try {
      const g = await createGroup(rks.app, admin, uniq('x'));
      await request(rks.app).get('/rks/v1/node/secrets').set('X-Vault-Token', admin).expect(403);
      await request(rks.app).get('/rks/v1/node/secrets').set('X-Vault-Token', g).expect(403);
      await request(rks.app).get('/rks/v1/node/secrets').expect(403);
    } finally {
      w.close();
    }
  });
});
