import request from 'supertest';
import { Harness, adminToken, env, harness, vaultRead } from '../support/harness';
import { associate, createGroup, pushSecret, registerNode, uniq, vaultAs } from '../support/rks';

/**
 * A leaked administrator token, used straight against Vault (not through rks), reaches no
 * further than rks: it cannot write a policy's text, make a role or a token of any policy but a
 * group token's, touch another application's tokens, mounts or secrets. Each row is a Vault call
 * it must be refused, next to what it still must do.
 */
describe('security: what a leaked admin token cannot do straight against Vault', () => {
  let h: Harness;
  let admin: string;
  const g = uniq('adm');
  const other = `other-${uniq('app')}`;
  const SUPERUSER = 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }';
  let othersToken: string;

  beforeAll(async () => {
    h = harness();
    admin = await adminToken(h.app);
    await createGroup(h.app, admin, g);
    // Another application on the same Vault: a KV mount, a secret, a policy and a token of its own.
    await vaultAs(env.rootToken, 'POST', `sys/mounts/${other}`, { type: 'kv', options: { version: '2' } });
    await vaultAs(env.rootToken, 'POST', `${other}/data/db`, { data: { password: 'theirs' } });
    await vaultAs(env.rootToken, 'PUT', `sys/policies/acl/${other}`, { policy: `path "${other}/*" { capabilities = ["read"] }` });
    othersToken = (await vaultAs(env.rootToken, 'POST', 'auth/token/create', { policies: [other], ttl: '1h' })).body.auth.client_token;
  });
  afterAll(async () => {
    await vaultAs(env.rootToken, 'DELETE', `sys/mounts/${other}`);
    await vaultAs(env.rootToken, 'DELETE', `sys/policies/acl/${other}`);
    for (const p of [`rks_node_zz-${g}`, `rks_grouptoken_zz-${g}`]) await vaultAs(env.rootToken, 'DELETE', `sys/policies/acl/${p}`);
    h.close();
  });

  it("the review's chain: a superuser policy as rks_node_zz, a role minting it, a token reading another application's secret: refused at each step", async () => {
    expect((await vaultAs(admin, 'PUT', `sys/policies/acl/rks_node_zz-${g}`, { policy: SUPERUSER })).status).toBe(403);
    expect((await vaultRead(`sys/policies/acl/rks_node_zz-${g}`)).status).toBe(404);
    const role = await vaultAs(admin, 'POST', `auth/token/roles/rks_grouptoken_zz2-${g}`, { allowed_policies: [`rks_node_zz-${g}`], orphan: true });
    expect(role.status).toBe(403);
    expect((await vaultAs(admin, 'POST', `auth/token/create/rks_grouptoken_zz2-${g}`, {})).status).not.toBe(200);
    expect((await vaultAs(admin, 'GET', `${other}/data/db`)).status).toBe(403);
  });

  const rolePolicies = (policies: unknown, extra: Record<string, unknown> = {}) =>
    vaultAs(admin, 'POST', `auth/token/roles/rks_grouptoken_probe-${g}`, { allowed_policies: policies, orphan: true, renewable: true, token_no_default_policy: true, token_period: 3600, token_type: 'service', ...extra });

  it.each([
    ['write a group-token policy\'s text', () => vaultAs(admin, 'PUT', `sys/policies/acl/rks_grouptoken_${g}`, { policy: SUPERUSER })],
    ['write a node policy\'s text', () => vaultAs(admin, 'PUT', `sys/policies/acl/rks_node_${g}`, { policy: SUPERUSER })],
    ['delete a group\'s policy', () => vaultAs(admin, 'DELETE', `sys/policies/acl/rks_node_${g}`)],
    ['write rks\'s own policies', () => vaultAs(admin, 'PUT', 'sys/policies/acl/rks_service', { policy: SUPERUSER })],
    ['write the admin policy', () => vaultAs(admin, 'PUT', 'sys/policies/acl/rks_admin', { policy: SUPERUSER })],
    ['write another policy', () => vaultAs(admin, 'PUT', 'sys/policies/acl/anything', { policy: SUPERUSER })],
    ['a role minting another application\'s policy', () => rolePolicies([other])],
    ['a role minting a node policy', () => rolePolicies([`rks_node_${g}`])],
    ['a role minting the admin policy', () => rolePolicies(['rks_admin'])],
    ['a role minting root', () => rolePolicies(['root'])],
    ['a role with another policy after a comma', () => rolePolicies(`rks_grouptoken_${g},${other}`)],
    ['a role with another policy in a list', () => rolePolicies([`rks_grouptoken_${g}`, other])],
    ['a role with the default policy', () => rolePolicies([`rks_grouptoken_${g}`], { token_no_default_policy: false })],
    ['a role with a policy glob', () => rolePolicies([`rks_grouptoken_${g}`], { allowed_policies_glob: ['*'] })],
    ['a role with token policies', () => rolePolicies([`rks_grouptoken_${g}`], { token_policies: [other] })],
    ['a group-token role of its own making (orphan tokens of a ten-year period, that no rotation revokes)', () => vaultAs(admin, 'POST', `auth/token/roles/rks_grouptoken_zz-${g}`, { allowed_policies: `rks_grouptoken_${g}`, orphan: true, token_period: 315360000 })],
    ["rewrite its group's token role, even as rks writes it", () => rolePolicies([`rks_grouptoken_${g}`])],
    ['a role of another name', () => vaultAs(admin, 'POST', 'auth/token/roles/evil', { allowed_policies: [other] })],
    ['a node role', () => vaultAs(admin, 'POST', `auth/token/roles/rks_node_${g}_probe`, { allowed_policies: [`rks_node_${g}`], orphan: false })],
    ['a token with policies of its choice', () => vaultAs(admin, 'POST', 'auth/token/create', { policies: [other] })],
    ['an orphan token', () => vaultAs(admin, 'POST', 'auth/token/create-orphan', { policies: ['rks_admin'] })],
    ['a group token with other policies', () => vaultAs(admin, 'POST', `auth/token/create/rks_grouptoken_${g}`, { policies: [other] })],
    ['a group token that never expires', () => vaultAs(admin, 'POST', `auth/token/create/rks_grouptoken_${g}`, { period: '87600h' })],
    ['a token from a node role', () => vaultAs(admin, 'POST', `auth/token/create/rks_node_${g}_probe`, {})],
    ['look up another application\'s token', () => vaultAs(admin, 'POST', 'auth/token/lookup', { token: othersToken })],
    ['revoke another application\'s token', () => vaultAs(admin, 'POST', 'auth/token/revoke', { token: othersToken })],
    ['renew another application\'s token', () => vaultAs(admin, 'POST', 'auth/token/renew', { token: othersToken })],
    ['revoke tokens by another prefix', () => vaultAs(admin, 'POST', 'sys/leases/revoke-prefix/auth/token/create', {})],
    ['read another application\'s secret', () => vaultAs(admin, 'GET', `${other}/data/db`)],
    ['write another mount', () => vaultAs(admin, 'POST', `${other}/data/db`, { data: { password: 'mine' } })],
    ['mount a secrets engine', () => vaultAs(admin, 'POST', 'sys/mounts/evil', { type: 'kv' })],
    ['enable an auth method', () => vaultAs(admin, 'POST', 'sys/auth/evil', { type: 'userpass' })],
    ['add a userpass user', () => vaultAs(admin, 'POST', 'auth/userpass/users/evil', { password: 'x', token_policies: ['rks_admin'] })],
    ['read rks\'s AppRole', () => vaultAs(admin, 'GET', 'auth/rks-service/role/rks/role-id')],
    ['make a secret id for rks\'s AppRole', () => vaultAs(admin, 'POST', 'auth/rks-service/role/rks/secret-id', {})],
    ['create an identity entity', () => vaultAs(admin, 'POST', 'identity/entity', { name: 'evil', policies: [other] })],
    ['read the audit configuration', () => vaultAs(admin, 'GET', 'sys/audit')],
    ['issue a CA from rks\'s PKI', () => vaultAs(admin, 'POST', 'rks-pki/root/sign-intermediate', { csr: 'x' })],
    ['rewrite a PKI role of rks', () => vaultAs(admin, 'POST', 'rks-pki/roles/server', { allow_any_name: true })],
  ])('cannot %s', async (_what, call) => {
    expect((await call()).status).toBe(403);
  });

  it("a token that may read rks's data but not change it cannot make rks's identity drop a group's policies", async () => {
    const name = uniq('ro');
    await createGroup(h.app, admin, name);
    await vaultAs(env.rootToken, 'PUT', `sys/policies/acl/${other}-reader`, { policy: 'path "rks/data/*" { capabilities = ["read", "list"] }\npath "rks/metadata/*" { capabilities = ["read", "list"] }' });
    const reader = (await vaultAs(env.rootToken, 'POST', 'auth/token/create', { policies: [`${other}-reader`], ttl: '10m' })).body.auth.client_token;
    expect((await request(h.app).delete(`/rks/v1/group/${name}`).set('X-Vault-Token', reader)).status).toBe(403);
    expect((await vaultRead(`sys/policies/acl/rks_node_${name}`)).status).toBe(200);
    expect((await vaultRead(`sys/policies/acl/rks_grouptoken_${name}`)).status).toBe(200);
    expect((await request(h.app).get(`/rks/v1/group/${name}`).set('X-Vault-Token', admin)).status).toBe(200);
    await vaultAs(env.rootToken, 'DELETE', `sys/policies/acl/${other}-reader`);
  });

  it("another application's token was not touched", async () => {
    expect((await vaultAs(othersToken, 'GET', `${other}/data/db`)).body.data.data).toEqual({ password: 'theirs' });
  });

  it('still does what administration needs, through rks and against Vault', async () => {
    // Through rks: a group whose policies rks wrote, a node, a secret associated and read, a rotation.
    const name = uniq('still');
    const groupToken = await createGroup(h.app, admin, name);
    expect((await vaultRead(`sys/policies/acl/rks_grouptoken_${name}`)).body.data.policy).toContain(`auth/token/create/rks_node_${name}_*`);
    expect((await vaultRead(`sys/policies/acl/rks_node_${name}`)).body.data.policy).toContain(`rks/data/groups/${name}/secrets/*`);
    const fqdn = `${uniq('still')}.example.com`;
    await pushSecret(h.app, admin, fqdn);
    await associate(h.app, admin, name, fqdn);
    const { nodeToken } = await registerNode(h.app, groupToken, 'n1');
    expect((await request(h.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', nodeToken)).status).toBe(200);
    await request(h.app).put(`/rks/v1/group/${name}/grouptoken`).set('X-Vault-Token', admin).expect(200);
    expect((await vaultAs(nodeToken, 'GET', 'auth/token/lookup-self')).status).toBe(403);
    await request(h.app).delete(`/rks/v1/group/${name}`).set('X-Vault-Token', admin).expect(204);
    expect((await vaultRead(`sys/policies/acl/rks_node_${name}`)).status).toBe(404);
    expect((await vaultRead(`sys/policies/acl/rks_grouptoken_${name}`)).status).toBe(404);
    // Against Vault: rks's data, a group token from its group's role, a revocation of rks's tokens.
    expect((await vaultAs(admin, 'LIST', 'rks/metadata/groups/')).status).toBe(200);
    const minted = await vaultAs(admin, 'POST', `auth/token/create/rks_grouptoken_${g}`, { meta: { groupname: g } });
    expect(minted.status).toBe(200);
    expect(minted.body.auth.policies).toEqual([`rks_grouptoken_${g}`]);
    expect((await vaultAs(admin, 'POST', `sys/leases/revoke-prefix/auth/token/create/rks_grouptoken_${g}`, {})).status).toBe(204);
    expect((await vaultAs(minted.body.auth.client_token, 'GET', 'auth/token/lookup-self')).status).toBe(403);
  });
});
