import request from 'supertest';
import { Harness, adminToken, harness, vaultRead } from '../support/harness';
import { createGroup, uniq, vaultAs } from '../support/rks';

describe('POST /rks/v1/node', () => {
  let h: Harness;
  let admin: string;
  let groupToken: string;
  const g = uniq('reg');
  beforeAll(async () => {
    h = harness({ nodeTokenPeriod: 120 });
    admin = await adminToken(h.app);
    groupToken = await createGroup(h.app, admin, g);
  });
  afterAll(() => h.close());

  const register = (token: string | undefined, nodeId: string | undefined) => {
    let r = request(h.app).post('/rks/v1/node');
    if (token) r = r.set('X-Vault-Token', token);
    if (nodeId !== undefined) r = r.set('X-LCDN-nodeId', nodeId);
    return r;
  };

  it('answers 201 {nodeToken, ttl}: a periodic child of the group token, with the node policy only', async () => {
    const res = await register(groupToken, 'Node-A');
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ nodeToken: expect.any(String), ttl: 120 });
    const self = (await vaultAs(res.body.nodeToken, 'GET', 'auth/token/lookup-self')).body.data;
    expect(self).toMatchObject({ policies: [`rks_node_${g}`], meta: { groupname: g, nodeid: 'node-a' }, renewable: true, orphan: false });
    const role = (await vaultRead(`auth/token/roles/rks_node_${g}_node-a`)).body.data;
    expect(role).toMatchObject({ allowed_policies: [`rks_node_${g}`], orphan: false, token_period: 120 });
  });

  it('registering again gives another working token', async () => {
    const a = await register(groupToken, 'twice');
    const b = await register(groupToken, 'twice');
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body.nodeToken).not.toBe(b.body.nodeToken);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['with _', 'a_b'],
    ['with /', 'a/b'],
    ['too long', 'x'.repeat(65)],
  ])('a node id %s is 400', async (_what, id) => {
    const res = await register(groupToken, id);
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toMatch(/X-LCDN-nodeId/i);
  });

  it.each([
    ['no token', undefined],
    ['a bad token', 'hvs.bogus'],
  ])('%s is 403 and creates no role', async (_what, token) => {
    const res = await register(token, 'intruder');
    expect(res.status).toBe(403);
    expect((await vaultRead(`auth/token/roles/rks_node_${g}_intruder`)).status).toBe(404);
  });

  it('an admin token or a node token is not a group token (403)', async () => {
    const node = (await register(groupToken, 'n-1')).body.nodeToken;
    for (const t of [admin, node]) {
      const res = await register(t, 'sneaky');
      expect(res.status).toBe(403);
    }
    expect((await vaultRead(`auth/token/roles/rks_node_${g}_sneaky`)).status).toBe(404);
  });

  it('a group token of a deleted group is 403', async () => {
    const gone = uniq('gone');
    const t = await createGroup(h.app, admin, gone);
    await request(h.app).delete(`/rks/v1/group/${gone}`).set('X-Vault-Token', admin).expect(204);
    expect((await register(t, 'n1')).status).toBe(403);
  });
});
