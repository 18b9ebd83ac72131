import request from 'supertest';
import { nodePolicy } from '../../src/vault/policies';
import { Harness, adminToken, groupCopies, harness, vaultRead } from '../support/harness';
import { NO_CALLBACK, associate, createGroup, pushSecret, registerNode, uniq, vaultAs } from '../support/rks';

describe('groups: /rks/v1/group/{g}', () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = harness();
    admin = await adminToken(h.app);
  });
  afterAll(() => h.close());
  const api = () => request(h.app);

  describe('lifecycle', () => {
    const g = uniq('life');
    let groupToken: string;
    const info = { ...NO_CALLBACK };

    it('POST creates it (201) with a group token and the Vault objects behind it', async () => {
      const res = await api().post(`/rks/v1/group/${g}`).set('X-Vault-Token', admin).send(info);
      expect(res.status).toBe(201);
      expect(Object.keys(res.body)).toEqual(['groupToken']);
      groupToken = res.body.groupToken;
      expect((await vaultRead(`rks/data/groups/${g}/config`)).body.data.data).toEqual(info);
      expect(await groupCopies(g)).toEqual([]);
      expect((await vaultRead(`rks/data/groups/${g}/serial`)).body.data.data.incarnation).toEqual(expect.any(String));
      expect((await vaultRead(`rks/data/groups/${g}/grouptoken`)).body.data.data.groupToken).toBe(groupToken);
      expect((await vaultRead(`sys/policies/acl/rks_grouptoken_${g}`)).status).toBe(200);
      expect((await vaultRead(`sys/policies/acl/rks_node_${g}`)).status).toBe(200);
      const role = (await vaultRead(`auth/token/roles/rks_grouptoken_${g}`)).body.data;
      expect(role).toMatchObject({ orphan: true, allowed_policies: [`rks_grouptoken_${g}`], token_period: 31 * 86400 });
      const self = await vaultAs(groupToken, 'GET', 'auth/token/lookup-self');
      expect(self.body.data).toMatchObject({ policies: [`rks_grouptoken_${g}`], meta: { groupname: g }, orphan: true, renewable: true });
      expect(self.body.data.ttl).toBeGreaterThan(30 * 86400);
    });

    it('POST again is 409 and the token is unchanged', async () => {
      const res = await api().post(`/rks/v1/group/${g}`).set('X-Vault-Token', admin).send(info);
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ errors: [`group '${g}' already exists`] });
      expect((await vaultRead(`rks/data/groups/${g}/grouptoken`)).body.data.data.groupToken).toBe(groupToken);
      expect((await vaultAs(groupToken, 'GET', 'auth/token/lookup-self')).status).toBe(200);
    });

    it('names are case-insensitive: EDGE is the same group as edge', async () => {
      const res = await api().post(`/rks/v1/group/${g.toUpperCase()}`).set('X-Vault-Token', admin).send(info);
      expect(res.status).toBe(409);
      expect((await api().get(`/rks/v1/group/${g.toUpperCase()}`).set('X-Vault-Token', admin)).status).toBe(200);
    });

    it('GET and GET .../config answer the registration info', async () => {
      for (const path of [`/rks/v1/group/${g}`, `/rks/v1/group/${g}/config`]) {
        const res = await api().get(path).set('X-Vault-Token', admin);
        expect(res.status).toBe(200);
        expect(res.body).toEqual(info);
      }
    });

    it('PUT replaces it (200)', async () => {
      const next = { callbackURL: 'https://manager.example.com/callback/nodes', oauthURL: 'https://manager.example.com/token', oauthClientID: 'id', oauthClientSecret: 's' };
      const res = await api().put(`/rks/v1/group/${g}`).set('X-Vault-Token', admin).send(next);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(next);
      expect((await vaultRead(`rks/data/groups/${g}/config`)).body.data.data).toEqual(next);
      await api().put(`/rks/v1/group/${g}`).set('X-Vault-Token', admin).send(info).expect(200);
    });

    it('GET .../grouptoken answers the current token', async () => {
      const res = await api().get(`/rks/v1/group/${g}/grouptoken`).set('X-Vault-Token', admin);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ groupToken });
    });

    it('PUT .../grouptoken rotates: the old token and its nodes are revoked', async () => {
      const node = await registerNode(h.app, groupToken, 'n1');
      const res = await api().put(`/rks/v1/group/${g}/grouptoken`).set('X-Vault-Token', admin);
      expect(res.status).toBe(200);
      expect(res.body.groupToken).not.toBe(groupToken);
      expect((await vaultAs(groupToken, 'GET', 'auth/token/lookup-self')).status).toBe(403);
      expect((await vaultAs(node.nodeToken, 'GET', 'auth/token/lookup-self')).status).toBe(403);
      expect((await vaultAs(res.body.groupToken, 'GET', 'auth/token/lookup-self')).status).toBe(200);
      groupToken = res.body.groupToken;
      expect((await api().get(`/rks/v1/group/${g}/grouptoken`).set('X-Vault-Token', admin)).body).toEqual({ groupToken });
    });

    it('GET .../secrets lists the associated secrets', async () => {
      const fqdn = `${uniq('s')}.example.com`;
      await pushSecret(h.app, admin, fqdn);
      expect((await api().get(`/rks/v1/group/${g}/secrets`).set('X-Vault-Token', admin)).body).toEqual([]);
      await associate(h.app, admin, g, fqdn);
      const res = await api().get(`/rks/v1/group/${g}/secrets`).set('X-Vault-Token', admin);
      expect(res.status).toBe(200);
      expect(res.body).toEqual([fqdn]);
    });

    it('DELETE removes everything rks made for it (204), then everything is 404', async () => {
      const node = await registerNode(h.app, groupToken, 'n2');
      const [fqdn] = (await api().get(`/rks/v1/group/${g}/secrets`).set('X-Vault-Token', admin)).body;
      const res = await api().delete(`/rks/v1/group/${g}`).set('X-Vault-Token', admin);
      expect(res.status).toBe(204);
      for (const p of ['config', 'secret-list', 'grouptoken']) {
        expect((await vaultRead(`rks/data/groups/${g}/${p}`)).status).toBe(404);
      }
      expect((await vaultRead(`sys/policies/acl/rks_grouptoken_${g}`)).status).toBe(404);
      expect((await vaultRead(`sys/policies/acl/rks_node_${g}`)).status).toBe(404);
      expect((await vaultRead(`auth/token/roles/rks_grouptoken_${g}`)).status).toBe(404);
      expect((await vaultRead(`auth/token/roles/rks_node_${g}_n2`)).status).toBe(404);
      expect((await vaultAs(groupToken, 'GET', 'auth/token/lookup-self')).status).toBe(403);
      expect((await vaultAs(node.nodeToken, 'GET', 'auth/token/lookup-self')).status).toBe(403);
      expect((await api().get(`/rks/v1/secret/${fqdn}/groups`).set('X-Vault-Token', admin)).body).toEqual([]);
      // and the secret, no longer in use, can go
      expect((await api().delete(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', admin)).status).toBe(204);
    });

    it.each([
      ['GET', ''],
      ['PUT', ''],
      ['DELETE', ''],
      ['GET', '/config'],
      ['GET', '/grouptoken'],
      ['PUT', '/grouptoken'],
      ['GET', '/secrets'],
      ['DELETE', '/nodes/n1'],
    ])('%s /group/{g}%s of an unknown group is 404', async (method, suffix) => {
      const req = (api() as any)[method.toLowerCase()](`/rks/v1/group/${g}${suffix}`).set('X-Vault-Token', admin);
      const res = method === 'PUT' && suffix === '' ? await req.send(info) : await req;
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ errors: [`group '${g}' not found`] });
    });
  });

  it('DELETE is safe to run again after a crash half-way', async () => {
    const g = uniq('crash');
    const groupToken = await createGroup(h.app, admin, g);
    const node = await registerNode(h.app, groupToken, 'n1');
    // Simulate a crash after the first steps: tokens revoked and policies gone, config left.
    await vaultAs(process.env.RKS_TEST_ROOT_TOKEN!, 'POST', `sys/leases/revoke-prefix/auth/token/create/rks_grouptoken_${g}`, {});
    await vaultAs(process.env.RKS_TEST_ROOT_TOKEN!, 'DELETE', `sys/policies/acl/rks_grouptoken_${g}`);
    const res = await api().delete(`/rks/v1/group/${g}`).set('X-Vault-Token', admin);
    expect(res.status).toBe(204);
    expect((await vaultRead(`rks/data/groups/${g}/config`)).status).toBe(404);
    expect((await vaultRead(`auth/token/roles/rks_node_${g}_n1`)).status).toBe(404);
    expect((await vaultAs(node.nodeToken, 'GET', 'auth/token/lookup-self')).status).toBe(403);
    expect((await api().delete(`/rks/v1/group/${g}`).set('X-Vault-Token', admin)).status).toBe(404);
  });

  describe('association', () => {
    const g = uniq('assoc');
    const fqdn = `${uniq('a')}.example.com`;
    beforeAll(async () => {
      await createGroup(h.app, admin, g);
      await pushSecret(h.app, admin, fqdn);
    });

    it('POST .../secrets/{fqdn} associates (201): list, index and node policy follow', async () => {
      const res = await api().post(`/rks/v1/group/${g}/secrets/${fqdn}`).set('X-Vault-Token', admin);
      expect(res.status).toBe(201);
      expect(await groupCopies(g)).toEqual([fqdn]);
      const [copy, secret] = [(await vaultRead(`rks/data/groups/${g}/secrets/${fqdn}`)).body.data, (await vaultRead(`rks/data/${fqdn}`)).body.data];
      expect(copy.data).toEqual({ certificate: secret.data.certificate, private_key: secret.data.private_key, info: secret.data.info, source: secret.metadata.version });
      expect((await vaultRead(`rks/data/index/secret-groups/${fqdn}`)).body.data.data.groups).toEqual([g]);
      expect((await vaultRead(`sys/policies/acl/rks_node_${g}`)).body.data.policy).toBe(nodePolicy(g));
      expect((await api().get(`/rks/v1/secret/${fqdn}/groups`).set('X-Vault-Token', admin)).body).toEqual([g]);
    });

    it('again is 409', async () => {
      const res = await api().post(`/rks/v1/group/${g}/secrets/${fqdn}`).set('X-Vault-Token', admin);
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ errors: [`secret '${fqdn}' is already associated with group '${g}'`] });
    });

    it('DELETE /secret/{fqdn} is 409 while associated', async () => {
      const res = await api().delete(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', admin);
      expect(res.status).toBe(409);
      expect((await vaultRead(`rks/data/${fqdn}`)).status).toBe(200);
    });

    it('an unknown secret or group is 404', async () => {
      const a = await api().post(`/rks/v1/group/${g}/secrets/nope-${fqdn}`).set('X-Vault-Token', admin);
      expect(a.status).toBe(404);
      expect(a.body).toMatchObject({ errors: [`secret 'nope-${fqdn}' not found`] });
      const b = await api().post(`/rks/v1/group/nope-${g}/secrets/${fqdn}`).set('X-Vault-Token', admin);
      expect(b.status).toBe(404);
      expect((await vaultRead(`rks/data/index/secret-groups/nope-${fqdn}`)).status).toBe(404);
    });

    it('DELETE .../secrets/{fqdn} dissociates (204); again is 404', async () => {
      const res = await api().delete(`/rks/v1/group/${g}/secrets/${fqdn}`).set('X-Vault-Token', admin);
      expect(res.status).toBe(204);
      expect(await groupCopies(g)).toEqual([]);
      expect((await vaultRead(`rks/data/groups/${g}/secrets/${fqdn}`)).status).toBe(404);
      expect((await vaultRead(`rks/data/index/secret-groups/${fqdn}`)).body.data.data.groups).toEqual([]);
      const again = await api().delete(`/rks/v1/group/${g}/secrets/${fqdn}`).set('X-Vault-Token', admin);
      expect(again.status).toBe(404);
      expect((await api().delete(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', admin)).status).toBe(204);
    });
  });

  describe('bad input and bad tokens', () => {
    it.each([
      ['an unknown field', { ...NO_CALLBACK, extra: 'x' }],
      ['a missing field', { callbackURL: '', oauthURL: '', oauthClientID: '' }],
      ['a non-https callback', { ...NO_CALLBACK, callbackURL: 'http://manager.example.com/cb', oauthURL: 'https://m.example.com/t', oauthClientID: 'a', oauthClientSecret: 'b' }],
      ['a callback without OAuth settings', { ...NO_CALLBACK, callbackURL: 'https://manager.example.com/cb' }],
      ['a wrong type', { ...NO_CALLBACK, oauthClientID: 7 }],
    ])('%s is 400 and creates nothing', async (_what, body) => {
      const g = uniq('bad');
      const res = await api().post(`/rks/v1/group/${g}`).set('X-Vault-Token', admin).send(body);
      expect(res.status).toBe(400);
      expect(res.body.errors.length).toBeGreaterThan(0);
      expect((await vaultRead(`rks/data/groups/${g}/config`)).status).toBe(404);
      expect((await vaultRead(`sys/policies/acl/rks_grouptoken_${g}`)).status).toBe(404);
    });

    it.each(['a_b', 'a.b', 'x'.repeat(65), 'a*', 'a%2Fb'])('group name %j is 400', async (name) => {
      const res = await api().post(`/rks/v1/group/${name}`).set('X-Vault-Token', admin).send(NO_CALLBACK);
      expect(res.status).toBe(400);
      expect(res.body.errors[0]).toMatch(/invalid group name/);
    });

    it('a group token, a node token or no token cannot administer groups (403)', async () => {
      const g = uniq('tok');
      const groupToken = await createGroup(h.app, admin, g);
      const { nodeToken } = await registerNode(h.app, groupToken, 'n1');
      for (const t of [groupToken, nodeToken, 'bogus', undefined]) {
        const withT = (r: request.Test) => (t ? r.set('X-Vault-Token', t) : r);
        expect((await withT(api().post(`/rks/v1/group/${uniq('x')}`)).send(NO_CALLBACK)).status).toBe(403);
        expect((await withT(api().get(`/rks/v1/group/${g}`))).status).toBe(403);
        expect((await withT(api().put(`/rks/v1/group/${g}/grouptoken`))).status).toBe(403);
        expect((await withT(api().delete(`/rks/v1/group/${g}`))).status).toBe(403);
        expect((await withT(api().delete(`/rks/v1/group/${g}/nodes/n1`))).status).toBe(403);
      }
      expect((await vaultAs(nodeToken, 'GET', 'auth/token/lookup-self')).status).toBe(200);
    });
  });
});
