import { InitService } from '../../src/init/service';
import { serviceCredentials } from '../../src/vault/identity';
import { ADMIN_POLICY, LAYOUT, MANAGED_POLICY, SERVICE_POLICY, SERVICE_ROLE, USERPASS_LOCKOUT, adminPolicy, servicePolicy } from '../../src/vault/layout';
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
    expect(await stores.setup.readPolicy(MANAGED_POLICY)).not.toBeNull();
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
});
