import request from 'supertest';
import { Harness, harness } from '../support/harness';
import { TestVault, startVault } from '../support/vault';

/**
 * On a real Vault where rks never ran, what someone else made under rks's names (as a classic
 * edge could, or anyone before rks came) is adopted by nothing: init answers 409 naming each,
 * and writes nothing; once they are gone, it initialises.
 */
describe('init on a Vault holding what predates rks', () => {
  let vault: TestVault;
  let h: Harness;
  const admin = { login: 'ops-admin', password: 'correct horse battery staple' };
  const as = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${vault.addr}/v1/${path}`, {
      method,
      headers: { 'X-Vault-Token': vault.rootToken, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: res.status === 204 ? null : ((await res.json()) as any) };
  };

  beforeAll(async () => {
    vault = await startVault();
    h = harness({ vaultAddrs: [vault.addr], admin, allowWeakAdminPassword: true });
  }, 60_000);
  afterAll(async () => {
    h.close();
    await vault.stop();
  });

  it('refuses, naming each, writes nothing, and initialises once they are gone', async () => {
    // A CA at rks's PKI path; a login with no policy of its own whose identity hands it rks's
    // admin policy; a role of another name that mints it; a token that already names it.
    expect((await as('POST', 'sys/mounts/rks-pki', { type: 'pki' })).status).toBe(204);
    expect((await as('POST', 'sys/auth/userpass', { type: 'userpass' })).status).toBe(204);
    expect((await as('POST', 'auth/userpass/users/mallory', { password: 'mallory-pw-1' })).status).toBe(204);
    const entity = (await as('POST', 'identity/entity', { name: 'mallory', policies: ['RKS_ADMIN'] })).body.data.id as string;
    const accessor = (await as('GET', 'sys/auth')).body.data['userpass/'].accessor as string;
    expect((await as('POST', 'identity/entity-alias', { name: 'mallory', canonical_id: entity, mount_accessor: accessor })).status).toBe(200);
    expect((await as('POST', 'auth/token/roles/ci-deployer', { allowed_policies: ['rks_admin'] })).status).toBe(204);
    const early = (await as('POST', 'auth/token/create', { policies: ['rks_service'], ttl: '1h' })).body.auth;

    const refused = await request(h.app).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken);
    expect([refused.status, refused.body.code]).toEqual([409, 'predating_objects']);
    const said = refused.body.errors[0] as string;
    for (const named of ['secrets engine "rks-pki/"', 'token role "ci-deployer"', `identity entity "mallory" (${entity})`, `token "${early.accessor}" (accessor)`]) expect(said).toContain(named);
    expect(said).not.toContain(early.client_token);
    expect((await as('GET', 'sys/policies/acl/rks_admin')).status).toBe(404);
    expect((await as('GET', 'sys/mounts')).body.data['rks/']).toBeUndefined();
    expect((await as('GET', 'sys/auth')).body.data['rks-service/']).toBeUndefined();

    for (const [method, path] of [['DELETE', 'sys/mounts/rks-pki'], ['DELETE', `identity/entity/id/${entity}`], ['DELETE', 'auth/token/roles/ci-deployer']]) await as(method, path);
    await as('POST', 'auth/token/revoke-accessor', { accessor: early.accessor });
    expect((await request(h.app).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken)).status).toBe(201);
    const login = await as('POST', 'auth/userpass/login/mallory', { password: 'mallory-pw-1' });
    expect(login.body.auth.policies).not.toContain('rks_admin');
  }, 60_000);
});
