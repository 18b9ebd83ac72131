import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { settingDefaults } from '../../src/settings';
import { Harness, harness } from '../support/harness';
import { vaultStores } from '../../src/vault/adapters';
import { InitService } from '../../src/init/service';
import { VaultClient } from '../../src/vault/client';
import { httpsRequest, peerCertificate, runRks } from '../support/serve';
import { TestVault, freePort, startVault, vaultCaller, vaultClient } from '../support/vault';

/**
 * The admin login needs no token, so strangers can fail at it as often as they like. This
 * suite locks users on purpose, so it runs on a Vault of its own rather than the run's shared
 * one, where every other suite logs in as the admin.
 */
describe('nobody without a token can lock rks out', () => {
  let vault: TestVault;
  let client: VaultClient;
  let server: http.Server;
  let rks: Harness;
  let port: number;
  const admin = { login: 'ops', password: randomBytes(18).toString('base64url') };

  const vaultCall = (...args: Parameters<ReturnType<typeof vaultCaller>>) => vaultCaller(vault)(...args);
  const lockedUsers = async (): Promise<string[]> => {
    const data = (await vaultCall('GET', 'sys/locked-users')).body.data;
    return (data.by_namespace ?? []).flatMap((ns: any) => ns.mount_accessors.flatMap((m: any) => m.alias_identifiers));
  };
  /** POST /rks/v1/admin/login from a given loopback source address. */
  const login = (body: { login: string; password: string }, from = '127.0.0.1') =>
    new Promise<{ status: number; retryAfter?: string; body: any }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, path: '/rks/v1/admin/login', method: 'POST', localAddress: from, headers: { 'Content-Type': 'application/json' } },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });

  beforeAll(async () => {
    vault = await startVault();
    client = vaultClient(vault.addr);
    await new InitService(vaultStores(client), admin).init(vault.rootToken);
    // rks on its default login limits.
    const built = harness({
      vaultAddrs: [vault.addr],
      admin,
      loginRateLimit: settingDefaults().loginRateLimit,
      loginFailureLimit: settingDefaults().loginFailureLimit,
    });
    rks = built;
    const app = built.app;
    server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  }, 60_000);
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    client.close();
    rks.close();
    await vault.stop();
  });

  it('init sets Vault\'s user lockout on the userpass mount explicitly', async () => {
    const tune = (await vaultCall('GET', 'sys/auth/userpass/tune')).body.data;
    expect(tune).toMatchObject({
      user_lockout_threshold: 20,
      user_lockout_duration: 900,
      user_lockout_counter_reset_duration: 900,
      user_lockout_disable: false,
    });
  });

  it('110 wrong passwords from 11 addresses, then more every minute, never keep the administrator out nor lock it in Vault', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 110; i++) statuses.push((await login({ login: admin.login, password: `guess-${i}` }, `127.0.0.${2 + (i % 11)}`)).status);
    // rks knows the configured password: wrong ones are refused here (400, then 429 as for any
    // login past its limit, so the answers do not tell which login is rks's), none reaches Vault.
    expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
    expect(new Set(statuses.slice(5))).toEqual(new Set([429]));
    expect(await lockedUsers()).toEqual([]);
    const ok = await login(admin, '127.0.0.20');
    expect(ok.status).toBe(200);
    expect(ok.body.adminToken).toMatch(/^hvs\./);
    // Each of those addresses is now held to its own limit, and no other address is.
    expect((await login({ login: admin.login, password: 'again' }, '127.0.0.2')).status).toBe(429);
    expect((await login(admin, '127.0.0.21')).status).toBe(200);
  });

  it('another login name passes Vault no more failures than its lockout allows, from any number of addresses', async () => {
    const user = 'someone';
    await vaultCall('POST', `auth/userpass/users/${user}`, { password: randomBytes(12).toString('hex') });
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push((await login({ login: user, password: `guess-${i}` }, `127.0.1.${2 + (i % 6)}`)).status);
    expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
    expect(new Set(statuses.slice(5))).toEqual(new Set([429]));
    expect(await lockedUsers()).toEqual([]);
  });

  it('an address that keeps failing is refused without its attempts being checked, the right password included', async () => {
    const from = '127.0.0.30';
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await login({ login: `nobody-${i}`, password: 'x' }, from)).status);
    expect(statuses).toEqual([400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 429, 429]);
    const refused = await login(admin, from);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ errors: ['too many failed logins from this address; retry later'], code: 'too_many_requests' });
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(60);
    expect((await login(admin, '127.0.0.31')).status).toBe(200);
  });

  it('a login Vault has locked is told so (423); rks itself goes on: a new instance serves its CA certificate and registers nodes', async () => {
    // A stranger who reaches Vault directly locks the admin there.
    for (let i = 0; i < 20; i++) await vaultCall('POST', `auth/userpass/login/${admin.login}`, { password: 'wrong' }, null);
    expect(await lockedUsers()).toEqual([admin.login]);
    const res = await login(admin, '127.0.0.40');
    expect(res.status).toBe(423);
    expect(res.body.code).toBe('login_locked');
    expect(res.body.errors[0]).toMatch(/locked by Vault/);

    const rksPort = await freePort();
    const rks = runRks(['serve', '--listen', `127.0.0.1:${rksPort}`], {
      RKS_VAULT_ADDR: vault.addr,
      RKS_ADMIN_LOGIN: admin.login,
      RKS_ADMIN_PASSWORD: admin.password,
    });
    try {
      await rks.waitFor('serving with a certificate from the rks CA', 20_000);
      await rks.waitFor('rks listening');
      const ca = (await vaultCall('GET', 'rks-pki/cert/ca')).body.data.certificate as string;
      expect((await peerCertificate(rksPort)).issuer.CN).toBe('rks CA');
      const caAnswer = await httpsRequest(`https://127.0.0.1:${rksPort}/ca/cert`, { ca });
      expect(caAnswer.status).toBe(200);
      // The root token works as an admin token: a group, and a node registered into it.
      const created = await httpsRequest(`https://127.0.0.1:${rksPort}/rks/v1/group/after-lockout`, {
        method: 'POST',
        ca,
        headers: { 'X-Vault-Token': vault.rootToken, 'Content-Type': 'application/json' },
        body: JSON.stringify({ callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' }),
      });
      expect(created.status).toBe(201);
      const registered = await httpsRequest(`https://127.0.0.1:${rksPort}/rks/v1/node`, {
        method: 'POST',
        ca,
        headers: { 'X-Vault-Token': JSON.parse(created.body).groupToken, 'X-LCDN-nodeId': 'edge-1' },
      });
      expect(registered.status).toBe(201);
      expect(rks.output()).not.toContain(admin.password);
    } finally {
      await rks.stop();
    }

    // The README's unlock, with the root token.
    const accessor = (await vaultCall('GET', 'sys/auth')).body.data['userpass/'].accessor;
    expect((await vaultCall('POST', `sys/locked-users/${accessor}/unlock/${admin.login}`)).status).toBe(204);
    expect((await login(admin, '127.0.0.41')).status).toBe(200);
  }, 60_000);

  it('the service identity is an AppRole the admin login never touches, with a policy of its own', async () => {
    const auth = (await vaultCall('GET', 'sys/auth')).body.data;
    expect(auth['rks-service/']).toMatchObject({ type: 'approle' });
    const role = (await vaultCall('GET', 'auth/rks-service/role/rks')).body.data;
    expect(role).toMatchObject({ token_policies: ['rks_service'], token_no_default_policy: true, secret_id_ttl: 0 });
    const policy = (await vaultCall('GET', 'sys/policies/acl/rks_service')).body.data.policy as string;
    expect(policy).toContain('path "rks/data/groups/+/config"');
    expect(policy).not.toContain('path "rks/data/*"');
    // Neither the role id nor the secret id is the password, and the config holds neither.
    const roleId = (await vaultCall('GET', 'auth/rks-service/role/rks/role-id')).body.data.role_id as string;
    expect(roleId).not.toContain(admin.password);
    expect(JSON.stringify((await vaultCall('GET', 'rks/data/config')).body)).not.toContain(roleId);
  });
});
