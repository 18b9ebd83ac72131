import request from 'supertest';
import { Harness, adminToken, harness } from '../support/harness';
import { associate, createGroup, pushSecret, registerNode, uniq, vaultAs } from '../support/rks';

/** A node token reads exactly its group's secrets, and loses them at once when it should. */
describe('security: node tokens', () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = harness();
    admin = await adminToken(h.app);
  });
  afterAll(() => h.close());

  const read = (t: string, f: string) => request(h.app).get(`/rks/v1/secret/${f}`).set('X-Vault-Token', t);

  async function setup(n = 2) {
    const g = uniq('nt');
    const groupToken = await createGroup(h.app, admin, g);
    const names = Array.from({ length: n }, () => `${uniq('n')}.example.com`);
    for (const f of names) await pushSecret(h.app, admin, f);
    for (const f of names) await associate(h.app, admin, g, f);
    const stranger = `${uniq('x')}.example.com`;
    await pushSecret(h.app, admin, stranger);
    const node = await registerNode(h.app, groupToken, 'node-1');
    return { g, groupToken, names, stranger, node };
  }

  it('reads exactly the associated secrets; 403 alike for others and for names that do not exist', async () => {
    const { names, stranger, node } = await setup();
    for (const f of names) {
      const res = await read(node.nodeToken, f);
      expect(res.status).toBe(200);
      expect(res.body.data.meta.ttl).toBe(300);
    }
    const a = await read(node.nodeToken, stranger);
    const b = await read(node.nodeToken, `${uniq('missing')}.example.com`);
    expect([a.status, b.status]).toEqual([403, 403]);
    expect(a.body).toEqual(b.body);
    expect((await vaultAs(node.nodeToken, 'LIST', 'rks/metadata/')).status).toBe(403);
    expect((await vaultAs(node.nodeToken, 'POST', `rks/data/${names[0]}`, { data: {} })).status).toBe(403);
  });

  it('a wildcard secret is read under its own name only', async () => {
    const g = uniq('wild');
    const t = await createGroup(h.app, admin, g);
    const base = `${uniq('w')}.example.com`;
    await pushSecret(h.app, admin, `*.${base}`);
    await pushSecret(h.app, admin, `www.${base}`);
    await associate(h.app, admin, g, `*.${base}`);
    const node = await registerNode(h.app, t, 'n');
    expect((await read(node.nodeToken, `*.${base}`)).status).toBe(200);
    expect((await read(node.nodeToken, `www.${base}`)).status).toBe(403);
  });

  it('loses a secret at once when it is dissociated', async () => {
    const { g, names, node } = await setup();
    await request(h.app).delete(`/rks/v1/group/${g}/secrets/${names[0]}`).set('X-Vault-Token', admin).expect(204);
    expect((await read(node.nodeToken, names[0])).status).toBe(403);
    expect((await read(node.nodeToken, names[1])).status).toBe(200);
  });

  it('loses everything at once when the node is revoked', async () => {
    const { g, names, node } = await setup(1);
    await request(h.app).delete(`/rks/v1/group/${g}/nodes/node-1`).set('X-Vault-Token', admin).expect(204);
    expect((await read(node.nodeToken, names[0])).status).toBe(403);
  });

  it('loses everything at once when the group token is rotated', async () => {
    const { g, names, node } = await setup(1);
    await request(h.app).put(`/rks/v1/group/${g}/grouptoken`).set('X-Vault-Token', admin).expect(200);
    expect((await read(node.nodeToken, names[0])).status).toBe(403);
  });

  it('loses everything at once when the group is deleted', async () => {
    const { g, names, node } = await setup(1);
    await request(h.app).delete(`/rks/v1/group/${g}`).set('X-Vault-Token', admin).expect(204);
    expect((await read(node.nodeToken, names[0])).status).toBe(403);
  });

  it('renews itself through rks; a bad token gets 403 permission denied', async () => {
    const { groupToken, node } = await setup(1);
    const res = await request(h.app).post('/rks/v1/auth/token/renew-self').set('X-Vault-Token', node.nodeToken);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ nodeToken: node.nodeToken, ttl: 600 });
    const g = await request(h.app).post('/rks/v1/auth/token/renew-self').set('X-Vault-Token', groupToken);
    expect(g.status).toBe(200);
    expect(g.body.ttl).toBe(31 * 86400);
    const bad = await request(h.app).post('/rks/v1/auth/token/renew-self').set('X-Vault-Token', 'hvs.bogus');
    expect(bad.status).toBe(403);
    expect(bad.body).toMatchObject({ errors: ['permission denied'] });
  });
});
