import request from 'supertest';
import { Harness, adminToken, harness, vaultRead, vaultWrite } from '../support/harness';
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

  it('registering again gives a new token and revokes the previous one: one live token a node', async () => {
    const a = await register(groupToken, 'twice');
    const b = await register(groupToken, 'twice');
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body.nodeToken).not.toBe(b.body.nodeToken);
    expect((await vaultAs(a.body.nodeToken, 'GET', 'auth/token/lookup-self')).status).toBe(403);
    expect((await vaultAs(b.body.nodeToken, 'GET', 'auth/token/lookup-self')).status).toBe(200);
  });

  it('keeps a record of each admitted node, refreshed when the node renews through rks', async () => {
    const res = await register(groupToken, 'recorded');
    const record = (await vaultRead(`rks/data/groups/${g}/nodes/recorded`)).body.data.data;
    expect(record).toEqual({ registeredAt: expect.any(String), seenAt: record.registeredAt });
    const old = '2020-01-01T00:00:00.000Z';
    await vaultWrite(`rks/data/groups/${g}/nodes/recorded`, { data: { registeredAt: old, seenAt: old } });
    await request(h.app).post('/rks/v1/auth/token/renew-self').set('X-Vault-Token', res.body.nodeToken).expect(200);
    let seenAt = old;
    for (let i = 0; i < 50 && seenAt === old; i++) {
      await new Promise((r) => setTimeout(r, 20));
      seenAt = (await vaultRead(`rks/data/groups/${g}/nodes/recorded`)).body.data.data.seenAt;
    }
    expect(Date.parse(seenAt)).toBeGreaterThan(Date.now() - 60_000);
    // Revoking the node removes its record, its role and its token.
    await request(h.app).delete(`/rks/v1/group/${g}/nodes/recorded`).set('X-Vault-Token', admin).expect(204);
    expect((await vaultRead(`rks/data/groups/${g}/nodes/recorded`)).status).toBe(404);
    expect((await vaultRead(`auth/token/roles/rks_node_${g}_recorded`)).status).toBe(404);
    expect((await vaultAs(res.body.nodeToken, 'GET', 'auth/token/lookup-self')).status).toBe(403);
  });

  it('a token whose role is gone (its node revoked while it was being made) cannot renew: 403, not an outage to retry', async () => {
    const res = await register(groupToken, 'orphaned');
    // What a registration that raced a revocation could leave before rks revokes it: a live token, no role.
    await vaultWrite(`auth/token/roles/rks_node_${g}_orphaned`, undefined, 'DELETE');
    const renew = await request(h.app).post('/rks/v1/auth/token/renew-self').set('X-Vault-Token', res.body.nodeToken);
    expect([renew.status, renew.body]).toEqual([403, { errors: ['permission denied'], code: 'forbidden' }]);
  });

  it('a group admits at most --max-nodes-per-group nodes: the next new one is 409, known ones register again', async () => {
    const small = harness({ maxNodesPerGroup: 3 });
    try {
      const sg = uniq('small');
      const t = await createGroup(small.app, admin, sg);
      const reg = (id: string) => request(small.app).post('/rks/v1/node').set('X-Vault-Token', t).set('X-LCDN-nodeId', id);
      for (const id of ['n1', 'n2', 'n3']) expect((await reg(id)).status).toBe(201);
      const refused = await reg('n4');
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('node_limit_reached');
      expect(refused.body.errors[0]).toMatch(/limit of 3 nodes \(--max-nodes-per-group\)/);
      expect((await vaultRead(`auth/token/roles/rks_node_${sg}_n4`)).status).toBe(404);
      // A flood of new ids creates nothing more in Vault.
      for (let i = 0; i < 20; i++) expect((await reg(`flood-${i}`)).status).toBe(409);
      const roles = ((await vaultRead('auth/token/roles?list=true')).body.data.keys as string[]).filter((r) => r.startsWith(`rks_node_${sg}_`));
      expect(roles.sort()).toEqual([`rks_node_${sg}_n1`, `rks_node_${sg}_n2`, `rks_node_${sg}_n3`]);
      expect((await reg('n2')).status).toBe(201);
      const text = (await request(small.app).get('/metrics')).text;
      expect(text).toMatch(/^rks_node_limit_refusals_total 21$/m);
      // Revoking a node frees its place.
      await request(small.app).delete(`/rks/v1/group/${sg}/nodes/n1`).set('X-Vault-Token', admin).expect(204);
      expect((await reg('n4')).status).toBe(201);
    } finally {
      small.close();
    }
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
