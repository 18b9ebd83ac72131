import { InitService } from '../../src/init/service';
import { serviceCredentials } from '../../src/vault/identity';
import { ADMIN_POLICY, LAYOUT, LEGACY_MANAGED_POLICY, SERVICE_POLICY, SERVICE_ROLE, USERPASS_LOCKOUT } from '../../src/vault/layout';
import { adminPolicy, servicePolicy } from '../../src/vault/policies';
import { memoryStores } from '../support/memory-vault';

const admin = { login: 'admin', password: 'init-test-Qx7mZ2vLp9wR4t' };

/** Init's rules against an in-memory Vault (tests/routes/init.vault.test.ts runs them against a real one). */
describe('InitService (in memory)', () => {
  const setup = () => {
    const stores = memoryStores();
    const root = stores.tokens.issue(['root']);
    return { stores, root, init: new InitService(stores, admin) };
  };

  it('sets up everything rks needs and records it in its config', async () => {
    const { stores, root, init } = setup();
    expect(await init.init(root)).toEqual({ initialised: true });
    expect(stores.setup.mounted.get('rks')).toEqual({ type: 'kv', options: { version: '2' } });
    expect(stores.setup.mounted.get('rks-pki')?.type).toBe('pki');
    expect(stores.setup.auths.get('userpass')?.tune).toEqual({
      user_lockout_threshold: USERPASS_LOCKOUT.threshold,
      user_lockout_duration: USERPASS_LOCKOUT.durationSeconds,
      user_lockout_counter_reset_duration: USERPASS_LOCKOUT.counterResetSeconds,
      user_lockout_disable: false,
    });
    // rks's own identity cannot be locked out by strangers failing to log in as it.
    expect(stores.setup.auths.get('rks-service')).toEqual({ type: 'approle', tune: { user_lockout_disable: true } });
    expect(stores.setup.users.get('admin')).toEqual({ password: admin.password, token_policies: [ADMIN_POLICY] });
    expect([await stores.setup.readPolicy(ADMIN_POLICY), await stores.setup.readPolicy(SERVICE_POLICY)]).toEqual([adminPolicy, servicePolicy]);
    // rks's identity is granted managed secrets by a folder, not a policy naming each.
    expect(await stores.setup.readPolicy(LEGACY_MANAGED_POLICY)).toBeNull();
    const creds = serviceCredentials(admin.login, admin.password, 'memory-cluster');
    expect(await stores.appRole.roleId(SERVICE_ROLE)).toBe((await creds).roleId);
    expect(await stores.appRole.hasSecretId(SERVICE_ROLE, (await creds).secretId)).toBe(true);
    expect(stores.pki.ca).toBe('memory CA rks CA');
    expect([...stores.pki.roles.keys()].sort()).toEqual(['client', 'server']);
    expect((await stores.kv.read('config'))?.data).toMatchObject({ initialized: true, layout: LAYOUT });
    expect(await init.ranHere(root)).toBe(true);
  });

  it('a second init changes nothing and says so (409)', async () => {
    const { root, init } = setup();
    await init.init(root);
    await expect(init.init(root)).rejects.toMatchObject({ status: 409, code: 'already_initialised' });
  });

  it('needs a token Vault knows; a made-up one is refused before anything is read', async () => {
    const { stores, init } = setup();
    await expect(init.init('hvs.made-up')).rejects.toMatchObject({ status: 403 });
    expect(stores.setup.mounted.size).toBe(0);
  });

  it('leaves a classic deployment as it is, naming rks migrate', async () => {
    const { stores, root, init } = setup();
    await stores.setup.mount('rks', 'kv', { version: '2' });
    await stores.kv.write('config', { VaultInitialized: true, AdminLogin: 'admin' }, root);
    await expect(init.init(root)).rejects.toMatchObject({ status: 409, code: 'classic_deployment' });
    expect([stores.setup.auths.size, stores.setup.users.size, stores.pki.ca]).toEqual([0, 0, null]);
  });

  it('refuses a path taken by something else, before writing anything of its own', async () => {
    const { stores, root, init } = setup();
    await stores.setup.mount('rks', 'kv', { version: '1' });
    await expect(init.init(root)).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/not a KV version 2 engine/) });
    expect(await stores.kv.exists('config')).toBe(false);
  });

  it('brings a Vault whose lockout settings were loosened back, and says what it changed', async () => {
    const { stores, root, init } = setup();
    await init.init(root);
    await stores.setup.tuneAuth('userpass', { user_lockout_config: { lockout_disable: true } });
    expect(await init.init(root)).toEqual({ upgraded: ['admin login lockout settings'] });
    expect(stores.setup.auths.get('userpass')?.tune.user_lockout_disable).toBe(false);
  });

  it('another rks with another admin password cannot take the service identity over', async () => {
    const { stores, root, init } = setup();
    await init.init(root);
    await stores.setup.putPolicy(SERVICE_POLICY, 'an older policy');
    const stranger = new InitService(stores, { login: 'admin', password: 'another-password-Zq8wL3mK' });
    await expect(stranger.init(root)).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/admin password is not the one Vault has/) });
    expect(await init.ranHere(root)).toBe(true);
  });

  describe('on a Vault where rks never ran, adopts nothing named like its own: 409 naming each, nothing written', () => {
    type Stores = ReturnType<typeof memoryStores>;
    it.each<[string, (s: Stores, root: string) => Promise<unknown>, RegExp]>([
      ['a secrets engine at its PKI path (a CA someone else may hold the key of)', (s) => s.setup.mount('rks-pki', 'pki', {}), /secrets engine "rks-pki\/"/],
      ['its auth method holding another role', async (s) => {
        await s.setup.enableAuth('rks-service', 'approle');
        await s.appRole.writeRole('backdoor', { token_policies: ['rks_admin'] } as never);
      }, /auth method "rks-service\/"/],
      ['its auth method of another type', (s) => s.setup.enableAuth('rks-service', 'userpass'), /auth method "rks-service\/"/],
      ['a node policy of its name', (s) => s.setup.putPolicy('rks_node_x', 'path "*" { capabilities = ["sudo"] }'), /policy "rks_node_x"/],
      ['its admin policy with other text', (s) => s.setup.putPolicy('rks_admin', 'path "*" { capabilities = ["sudo"] }'), /policy "rks_admin"/],
      ['a token role of its name', (s, root) => s.tokens.writeRole('rks_grouptoken_x', { allowed_policies: ['rks_admin'] } as never, root), /token role "rks_grouptoken_x"/],
      ['a token role of any name that can mint its admin policy once init writes it', (s, root) => s.tokens.writeRole('ci-deployer', { allowed_policies: ['default', 'RKS_admin'] } as never, root), /token role "ci-deployer"/],
      ['a token made before rks with its admin policy (Vault lets a token name a policy that does not exist yet)', async (s) => {
        s.tokens.issue(['default', 'rks_admin']);
      }, /token "[0-9a-f-]{36}" \(accessor\) carrying rks's policies/],
      ['an identity entity carrying its admin policy (aliased to a userpass login with none)', async (s) => {
        s.setup.identityList.push({ kind: 'entity', id: 'e-1', name: 'mallory', policies: ['rks_admin'] });
      }, /identity entity "mallory" \(e-1\) with "rks_admin"/],
      ['an identity entity carrying its admin policy as Vault would still apply it (upper case, spaces)', async (s) => {
        s.setup.identityList.push({ kind: 'entity', id: 'e-2', name: 'eve', policies: [' RKS_ADMIN'] });
      }, /identity entity "eve"/],
      ['an identity group carrying its service policy', async (s) => {
        s.setup.identityList.push({ kind: 'group', id: 'g-1', name: 'ops', policies: ['default', 'rks_service'] });
      }, /identity group "ops" \(g-1\)/],
      ['a userpass user carrying its admin policy', async (s) => {
        await s.setup.enableAuth('userpass', 'userpass');
        await s.setup.writeUserpassUser('userpass', 'mallory', { password: 'x', token_policies: ['rks_admin'] } as never);
      }, /userpass user "mallory"/],
      ['a group serial (an adopted group would count as moved)', async (s, root) => {
        await s.setup.mount('rks', 'kv', { version: '2' });
        await s.kv.write('groups/a/serial', { incarnation: 'planted' }, root);
      }, /record "rks\/data\/groups\/a\/serial"/],
      ['a copy and a reverse index entry (updates would write the key into that group)', async (s, root) => {
        await s.setup.mount('rks', 'kv', { version: '2' });
        await s.kv.write('groups/evil/secrets/www.example.com', { certificate: 'c' }, root);
        await s.kv.write('index/secret-groups/www.example.com', { groups: ['evil'] }, root);
      }, /(?=.*record "rks\/data\/groups\/evil\/secrets\/www.example.com")(?=.*record "rks\/data\/index\/secret-groups\/www.example.com")/],
    ])('%s', async (_what, plant, named) => {
      const { stores, root, init } = setup();
      await plant(stores, root);
      const before = { policies: [...stores.setup.policies.keys()].sort(), mounts: [...stores.setup.mounted.keys()], users: [...stores.setup.users.keys()], pki: stores.pki.ca };
      const refused = init.init(root);
      await expect(refused).rejects.toMatchObject({ status: 409, code: 'predating_objects', message: expect.stringMatching(named) });
      expect({ policies: [...stores.setup.policies.keys()].sort(), mounts: [...stores.setup.mounted.keys()], users: [...stores.setup.users.keys()], pki: stores.pki.ca }).toEqual(before);
      expect(await stores.kv.exists('config')).toBe(false);
    });

    it.each<[string, (s: ReturnType<typeof memoryStores>, root: string) => Promise<unknown>]>([
      ["a classic deployment whose config record its edges deleted (its group tokens' policy remains)", (s) => s.setup.putPolicy('addtoken-edge', 'path "auth/token/create/edge-*" {}')],
      ["a classic deployment whose record its edges rewrote as rks's (its group tokens' role remains)", async (s, root) => {
        await s.setup.mount('rks', 'kv', { version: '2' });
        await s.kv.write('config', { initialized: true, layout: 5 }, root);
        await s.tokens.writeRole('addToken-edge', { allowed_policies: ['addtoken-edge'] } as never, root);
      }],
    ])('%s: 409 classic_deployment, nothing written', async (_what, plant) => {
      const { stores, root, init } = setup();
      await plant(stores, root);
      await expect(init.init(root)).rejects.toMatchObject({ status: 409, code: 'classic_deployment', message: expect.stringMatching(/addtoken-edge/i) });
      expect([stores.setup.auths.size, stores.setup.users.size, stores.pki.ca]).toEqual([0, 0, null]);
    });

    it("what a half-way init of its own left (its own policies' text, its AppRole with rks's role alone) is taken up again", async () => {
      const { stores, root, init } = setup();
      await stores.setup.putPolicy(ADMIN_POLICY, adminPolicy);
      await stores.setup.putPolicy(SERVICE_POLICY, servicePolicy);
      await stores.setup.enableAuth('rks-service', 'approle');
      await stores.appRole.writeRole(SERVICE_ROLE, {} as never);
      expect(await init.init(root)).toEqual({ initialised: true });
    });
  });
});
