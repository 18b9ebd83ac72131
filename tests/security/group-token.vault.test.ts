import request from 'supertest';
import { Harness, adminToken, groupCopies, harness, vaultRead } from '../support/harness';
import { associate, createGroup, pushSecret, registerNode, uniq, vaultAs } from '../support/rks';

/**
 * Design §8: holding a group token and calling Vault directly, an attacker can register
 * nodes of its own group and nothing else. Every attempt below goes straight to Vault.
 */
describe('security: what a stolen group token cannot do', () => {
  let h: Harness;
  let admin: string;
  const g = uniq('victim');
  const other = uniq('other');
  let groupToken: string;
  let otherToken: string;
  const fqdn = `${uniq('sec')}.example.com`;

  beforeAll(async () => {
    h = harness();
    admin = await adminToken(h.app);
    groupToken = await createGroup(h.app, admin, g);
    otherToken = await createGroup(h.app, admin, other);
    await pushSecret(h.app, admin, fqdn);
    await associate(h.app, admin, g, fqdn);
    await registerNode(h.app, groupToken, 'n1');
  });
  afterAll(() => h.close());

  const denied = (r: { status: number; errors: string[] }) => {
    expect(r.status).toBe(403);
    expect(r.errors.join()).toMatch(/permission denied/);
  };

  it('cannot create a token role of any name', async () => {
    for (const role of ['evil', `rks_node_${g}_evil`, `rks_grouptoken_${g}`, 'rks_admin']) {
      denied(await vaultAs(groupToken, 'POST', `auth/token/roles/${role}`, { allowed_policies: ['rks_admin'], orphan: true }));
      expect((await vaultRead(`auth/token/roles/${role}`)).status === 404 || role === `rks_grouptoken_${g}`).toBe(true);
    }
  });

  it('cannot update the role of a node it registered', async () => {
    denied(await vaultAs(groupToken, 'POST', `auth/token/roles/rks_node_${g}_n1`, { allowed_policies: ['rks_admin'] }));
    expect((await vaultRead(`auth/token/roles/rks_node_${g}_n1`)).body.data.allowed_policies).toEqual([`rks_node_${g}`]);
  });

  it('cannot create a token with the admin policy or another group\'s policy', async () => {
    denied(await vaultAs(groupToken, 'POST', 'auth/token/create', { policies: ['rks_admin'] }));
    denied(await vaultAs(groupToken, 'POST', 'auth/token/create-orphan', { policies: ['rks_admin'] }));
    denied(await vaultAs(groupToken, 'POST', 'auth/token/create', { policies: [`rks_node_${other}`] }));
    denied(await vaultAs(groupToken, 'POST', `auth/token/create/rks_grouptoken_${other}`, {}));
    denied(await vaultAs(groupToken, 'POST', `auth/token/create/rks_grouptoken_${g}`, {}));
  });

  it('cannot widen a node token beyond the node policy, nor make one Vault can neither list nor revoke', async () => {
    denied(await vaultAs(groupToken, 'POST', `auth/token/create/rks_node_${g}_n1`, { policies: ['rks_admin'] }));
    // A batch token would outlive the node's revocation.
    denied(await vaultAs(groupToken, 'POST', `auth/token/create/rks_node_${g}_n1`, { type: 'batch' }));
    for (const extra of [{ ttl: '87600h' }, { num_uses: 0 }, { period: '87600h' }, { id: 'chosen' }]) {
      denied(await vaultAs(groupToken, 'POST', `auth/token/create/rks_node_${g}_n1`, extra));
    }
    expect((await vaultRead(`auth/token/roles/rks_node_${g}_n1`)).body.data.token_type).toBe('service');
  });

  it('a node token it makes with another group and node in its metadata is still its own node to rks', async () => {
    const made = await vaultAs(groupToken, 'POST', `auth/token/create/rks_node_${g}_n1`, { meta: { groupname: other, nodeid: 'victim' } });
    expect(made.status).toBe(200);
    const access = await request(h.app).get('/rks/v1/node/secrets').set('X-Vault-Token', made.body.auth.client_token).expect(200);
    expect(access.body).toMatchObject({ group: g, nodeId: 'n1', secrets: [fqdn] });
  });

  it('cannot register a node of another group', async () => {
    await registerNode(h.app, otherToken, 'n1');
    denied(await vaultAs(groupToken, 'POST', `auth/token/create/rks_node_${other}_n1`, {}));
  });

  it('cannot write or read its group\'s config, serial, copies or token', async () => {
    for (const p of ['config', 'serial', 'grouptoken', `secrets/${fqdn}`, 'secrets/evil.example.com']) {
      denied(await vaultAs(groupToken, 'POST', `rks/data/groups/${g}/${p}`, { data: { certificate: 'evil' } }));
      denied(await vaultAs(groupToken, 'GET', `rks/data/groups/${g}/${p}`));
    }
    denied(await vaultAs(groupToken, 'LIST', `rks/metadata/groups/${g}/secrets`));
    expect(await groupCopies(g)).toEqual([fqdn]);
  });

  it('cannot read or list any secret, not even its group\'s', async () => {
    denied(await vaultAs(groupToken, 'GET', `rks/data/${fqdn}`));
    denied(await vaultAs(groupToken, 'LIST', 'rks/metadata/'));
    denied(await vaultAs(groupToken, 'GET', 'rks/data/config'));
    const res = await request(h.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', groupToken);
    expect(res.status).toBe(403);
  });

  it('cannot rewrite policies or revoke other tokens', async () => {
    denied(await vaultAs(groupToken, 'PUT', `sys/policies/acl/rks_node_${g}`, { policy: 'path "*" { capabilities = ["sudo"] }' }));
    denied(await vaultAs(groupToken, 'PUT', `sys/policies/acl/rks_grouptoken_${g}`, { policy: '' }));
    denied(await vaultAs(groupToken, 'POST', `sys/leases/revoke-prefix/auth/token/create/rks_grouptoken_${other}`, {}));
    expect((await vaultAs(otherToken, 'GET', 'auth/token/lookup-self')).status).toBe(200);
  });

  it('can do exactly what it is for: register a node of its group through rks', async () => {
    const node = await registerNode(h.app, groupToken, 'n2');
    const self = await vaultAs(node.nodeToken, 'GET', 'auth/token/lookup-self');
    expect(self.body.data.policies).toEqual([`rks_node_${g}`]);
  });
});
