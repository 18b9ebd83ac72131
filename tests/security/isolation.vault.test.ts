import request from 'supertest';
import { Harness, adminToken, harness, vaultRead } from '../support/harness';
import { NO_CALLBACK, associate, createGroup, pushSecret, registerNode, uniq, vaultAs } from '../support/rks';

const alive = async (token: string) => (await vaultAs(token, 'GET', 'auth/token/lookup-self')).status === 200;

/** Names that share a prefix or contain '-' never reach into each other (design §3). */
describe('security: isolation between groups and nodes', () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = harness();
    admin = await adminToken(h.app);
  });
  afterAll(() => h.close());

  it('groups edge and edge-eu, nodes 1, 10 and a-1 stay apart', async () => {
    const base = uniq('edge');
    const [edge, edgeEu] = [base, `${base}-eu`];
    const edgeToken = await createGroup(h.app, admin, edge);
    const euToken = await createGroup(h.app, admin, edgeEu);
    const [s1, s2] = [`${uniq('e')}.example.com`, `${uniq('eu')}.example.com`];
    await pushSecret(h.app, admin, s1);
    await pushSecret(h.app, admin, s2);
    await associate(h.app, admin, edge, s1);
    await associate(h.app, admin, edgeEu, s2);

    const n1 = await registerNode(h.app, edgeToken, '1');
    const n10 = await registerNode(h.app, edgeToken, '10');
    const nA1 = await registerNode(h.app, edgeToken, 'a-1');
    const eu1 = await registerNode(h.app, euToken, '1');

    // Each node reads its own group's secret and not the other's.
    const read = (t: string, f: string) => request(h.app).get(`/rks/v1/secret/${f}`).set('X-Vault-Token', t);
    expect((await read(n1.nodeToken, s1)).status).toBe(200);
    expect((await read(n1.nodeToken, s2)).status).toBe(403);
    expect((await read(eu1.nodeToken, s2)).status).toBe(200);
    expect((await read(eu1.nodeToken, s1)).status).toBe(403);

    // Revoking node 1 of edge leaves node 10, node a-1 and node 1 of edge-eu working.
    await request(h.app).delete(`/rks/v1/group/${edge}/nodes/1`).set('X-Vault-Token', admin).expect(204);
    expect(await alive(n1.nodeToken)).toBe(false);
    expect(await alive(n10.nodeToken)).toBe(true);
    expect(await alive(nA1.nodeToken)).toBe(true);
    expect(await alive(eu1.nodeToken)).toBe(true);
    expect((await vaultRead(`auth/token/roles/rks_node_${edgeEu}_1`)).status).toBe(200);

    // Rotating edge's token leaves edge-eu alone.
    await request(h.app).put(`/rks/v1/group/${edge}/grouptoken`).set('X-Vault-Token', admin).expect(200);
    expect(await alive(n10.nodeToken)).toBe(false);
    expect(await alive(euToken)).toBe(true);
    expect(await alive(eu1.nodeToken)).toBe(true);

    // Deleting edge leaves edge-eu whole.
    await request(h.app).delete(`/rks/v1/group/${edge}`).set('X-Vault-Token', admin).expect(204);
    expect(await alive(eu1.nodeToken)).toBe(true);
    expect((await read(eu1.nodeToken, s2)).status).toBe(200);
    for (const p of [`sys/policies/acl/rks_node_${edgeEu}`, `sys/policies/acl/rks_grouptoken_${edgeEu}`, `auth/token/roles/rks_grouptoken_${edgeEu}`, `auth/token/roles/rks_node_${edgeEu}_1`]) {
      expect((await vaultRead(p)).status).toBe(200);
    }
    expect((await vaultRead(`rks/data/groups/${edgeEu}/config`)).status).toBe(200);
  });

  it('revoking an unknown node is 204 and touches nothing', async () => {
    const g = uniq('unk');
    const t = await createGroup(h.app, admin, g);
    const n = await registerNode(h.app, t, 'real');
    await request(h.app).delete(`/rks/v1/group/${g}/nodes/ghost`).set('X-Vault-Token', admin).expect(204);
    expect(await alive(n.nodeToken)).toBe(true);
  });

  it.each(['admin', 'default', 'root'])('a group named %s breaks neither rks_admin nor Vault\'s policies', async (name) => {
    const before = {
      admin: (await vaultRead('sys/policies/acl/rks_admin')).body.data.policy,
      vault: (await vaultRead(`sys/policies/acl/${name === 'root' ? 'default' : name}`)).body?.data?.policy,
    };
    const t = await createGroup(h.app, admin, name);
    const n = await registerNode(h.app, t, 'n1');
    expect((await vaultAs(n.nodeToken, 'GET', 'auth/token/lookup-self')).body.data.policies).toEqual([`rks_node_${name}`]);
    await request(h.app).delete(`/rks/v1/group/${name}`).set('X-Vault-Token', admin).expect(204);
    expect((await vaultRead('sys/policies/acl/rks_admin')).body.data.policy).toBe(before.admin);
    expect((await vaultRead(`sys/policies/acl/${name === 'root' ? 'default' : name}`)).body?.data?.policy).toBe(before.vault);
    // The admin still administers.
    const probe = uniq('probe');
    await createGroup(h.app, await adminToken(h.app), probe);
    await request(h.app).delete(`/rks/v1/group/${probe}`).set('X-Vault-Token', admin).expect(204);
  });

  it('the group info is never readable with a group token through rks', async () => {
    const g = uniq('cfg');
    const t = await createGroup(h.app, admin, g, { ...NO_CALLBACK });
    expect((await request(h.app).get(`/rks/v1/group/${g}`).set('X-Vault-Token', t)).status).toBe(403);
  });
});
