import { createLogger } from '../../src/log';
import { ServiceSession } from '../../src/vault/session';
import { Harness, adminToken, env, harness } from '../support/harness';
import { createGroup, pushSecret, uniq, vaultAs } from '../support/rks';

/** rks's own identity can do its work and nothing more, against the real Vault. */
describe("rks's service identity", () => {
  let h: Harness;
  let service: string;
  let g: string;
  beforeAll(async () => {
    h = harness();
    service = await new ServiceSession(h.vault, { login: env.adminLogin, password: env.adminPassword }, createLogger('silent')).token();
    g = uniq('svc');
    await createGroup(h.app, await adminToken(h.app), g);
  });
  afterAll(() => h.close());
  beforeEach(() => vaultAs(env.rootToken, 'DELETE', `auth/token/roles/rks_node_${g}_probe`));

  const role = (policies: string[], extra: Record<string, unknown> = {}) =>
    vaultAs(service, 'POST', `auth/token/roles/rks_node_${g}_probe`, {
      allowed_policies: policies,
      orphan: false,
      token_period: 600,
      renewable: true,
      token_no_default_policy: true,
      ...extra,
    });

  it('carries only the rks_service policy (managed secrets are granted by their folders)', async () => {
    expect((await vaultAs(service, 'GET', 'auth/token/lookup-self')).body.data.policies).toEqual(['rks_service']);
  });

  it('writes node roles held to node policies', async () => {
    expect((await role([`rks_node_${g}`])).status).toBe(204);
  });

  it.each([
    ['another policy', () => role(['rks_admin'])],
    ['the default policy too', () => role([`rks_node_${g}`], { token_no_default_policy: false })],
    ['orphan tokens', () => role([`rks_node_${g}`], { orphan: true })],
    ['a parameter it has no use for', () => role([`rks_node_${g}`], { token_explicit_max_ttl: 0 })],
    ['a role outside rks_node_*', () => vaultAs(service, 'POST', 'auth/token/roles/evil', { allowed_policies: ['root'] })],
    // Vault splits a string on commas after matching it whole against the glob.
    ['another policy after a comma, in a string', () => role(`rks_node_${g},rks_admin` as unknown as string[])],
    ['another policy after a comma, in a list', () => role([`rks_node_${g},rks_admin`])],
    ['another policy in a list', () => role([`rks_node_${g}`, 'rks_admin'])],
    ['another policy behind spaces', () => role(` rks_node_${g} , rks_admin ` as unknown as string[])],
    ['a policy glob', () => role([`rks_node_${g}`], { allowed_policies_glob: ['*'] })],
    ['token policies', () => role([`rks_node_${g}`], { token_policies: ['rks_admin'] })],
    ['the flags as strings', () => role([`rks_node_${g}`], { orphan: 'true' })],
  ])('cannot write a node role with %s', async (_what, write) => {
    expect((await write()).status).toBe(403);
    // Nor did any such write leave a role behind that mints anything but a node token.
    const probe = await vaultAs(service, 'GET', `auth/token/roles/rks_node_${g}_probe`);
    if (probe.status === 200) expect(probe.body.data.allowed_policies).toEqual([`rks_node_${g}`]);
  });

  it('cannot read a group token, a secret, or write a group config', async () => {
    const fqdn = `${uniq('svc')}.example.com`;
    await pushSecret(h.app, await adminToken(h.app), fqdn);
    expect((await vaultAs(service, 'GET', `rks/data/groups/${g}/grouptoken`)).status).toBe(403);
    expect((await vaultAs(service, 'GET', `rks/data/${fqdn}`)).status).toBe(403);
    expect((await vaultAs(service, 'POST', `rks/data/groups/${g}/config`, { data: {} })).status).toBe(403);
    expect((await vaultAs(service, 'GET', `rks/data/groups/${g}/grouptoken-accessor`)).status).toBe(200);
  });

  it("records a change in an existing group's serial, and makes none for a group without one", async () => {
    const serial = await vaultAs(service, 'GET', `rks/data/groups/${g}/serial`);
    expect(serial.status).toBe(200);
    expect((await vaultAs(service, 'POST', `rks/data/groups/${g}/serial`, { data: serial.body.data.data, options: { cas: serial.body.data.metadata.version } })).status).toBe(200);
    expect((await vaultAs(service, 'POST', `rks/data/groups/${uniq('none')}/serial`, { data: { incarnation: 'x' } })).status).toBe(403);
    expect((await vaultAs(service, 'DELETE', `rks/metadata/groups/${g}/serial`)).status).toBe(403);
  });

  it("writes a group's two policies (the text rks builds), and no other policy", async () => {
    const text = (await vaultAs(env.rootToken, 'GET', `sys/policies/acl/rks_node_${g}`)).body.data.policy;
    expect((await vaultAs(service, 'PUT', `sys/policies/acl/rks_node_${g}`, { policy: text })).status).toBe(204);
    const superuser = 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }';
    for (const name of ['rks_service', 'rks_managed', 'rks_admin', 'default', 'anything', 'root']) {
      expect([name, (await vaultAs(service, 'PUT', `sys/policies/acl/${name}`, { policy: superuser })).status]).toEqual([name, 403]);
    }
  });

  it('creates no token at all: not from a group token role, a node role, or of its own choice', async () => {
    expect((await vaultAs(service, 'POST', `auth/token/create/rks_grouptoken_${g}`, {})).status).toBe(403);
    expect((await role([`rks_node_${g}`])).status).toBe(204);
    expect((await vaultAs(service, 'POST', `auth/token/create/rks_node_${g}_probe`, {})).status).toBe(403);
    expect((await vaultAs(service, 'POST', 'auth/token/create', { policies: [`rks_node_${g}`] })).status).toBe(403);
    expect((await vaultAs(service, 'POST', 'auth/token/create-orphan', {})).status).toBe(403);
    expect((await vaultAs(service, 'POST', `auth/token/roles/rks_grouptoken_${g}`, { allowed_policies: [`rks_node_${g}`] })).status).toBe(403);
  });
});
