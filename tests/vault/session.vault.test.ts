import { randomBytes } from 'node:crypto';
import { vaultStores } from '../../src/vault/adapters';
import { InitService } from '../../src/init/service';
import { createLogger } from '../../src/log';
import { VaultClient } from '../../src/vault/client';
import { clusterIdOf, serviceCredentials } from '../../src/vault/identity';
import { ServiceSession } from '../../src/vault/session';
import { TestVault, startVault, vaultCaller, vaultClient } from '../support/vault';

/**
 * rks's own login, on a Vault of its own (these tests re-key and remove the identity): what an
 * outsider who reaches Vault can and cannot do with it, and what an older layout costs.
 */
describe("rks's service session", () => {
  let vault: TestVault;
  let client: VaultClient;
  const admin = { login: 'ops', password: randomBytes(18).toString('base64url') };
  const call = (...args: Parameters<ReturnType<typeof vaultCaller>>) => vaultCaller(vault)(...args);
  const appRoleLogin = (secretId: string) => call('POST', 'auth/rks-service/login', { role_id: 'rks-service', secret_id: secretId }, null);
  const init = () => new InitService(vaultStores(client), admin).init(vault.rootToken);

  beforeAll(async () => {
    vault = await startVault();
    client = vaultClient(vault.addr);
    await init();
  }, 60_000);
  afterAll(async () => {
    client.close();
    await vault.stop();
  });

  it("derives its secret id per Vault cluster: the same password's derivation for another cluster, or none, does not log in", async () => {
    const here = await serviceCredentials(admin.login, admin.password, await clusterIdOf(client));
    expect((await appRoleLogin(here.secretId)).status).toBe(200);
    for (const other of [null, 'another-cluster-id']) {
      const elsewhere = await serviceCredentials(admin.login, admin.password, other);
      expect(elsewhere.secretId).not.toBe(here.secretId);
      expect((await appRoleLogin(elsewhere.secretId)).status).toBe(400);
    }
  });

  it('an identity an older rks made keeps working, with a warning, until init renews it', async () => {
    const legacy = await serviceCredentials(admin.login, admin.password, null);
    // As an older rks left it: its secret id alone.
    for (const accessor of (await call('LIST', 'auth/rks-service/role/rks/secret-id')).body.data.keys) {
      await call('POST', 'auth/rks-service/role/rks/secret-id-accessor/destroy', { secret_id_accessor: accessor });
    }
    expect((await call('POST', 'auth/rks-service/role/rks/custom-secret-id', { secret_id: legacy.secretId })).status).toBe(200);
    const lines: string[] = [];
    const logger = createLogger('warn', { write: (l: string) => void lines.push(l) });
    expect(await new ServiceSession(client, admin, logger).token()).toMatch(/^hvs\./);
    expect(lines.join('')).toContain('made by an older rks: run init again');
    expect(await init()).toEqual({ upgraded: ['service identity'] });
    expect((await appRoleLogin(legacy.secretId)).status).toBe(400);
  });

  it('on a Vault without the identity, a wrong admin password costs Vault one refused login per 5 minutes, never a lockout', async () => {
    expect((await call('DELETE', 'sys/auth/rks-service')).status).toBe(204);
    await call('POST', 'sys/auth/userpass/tune', { user_lockout_config: { lockout_threshold: '3', lockout_duration: '900s', lockout_counter_reset_duration: '900s' } });
    const session = new ServiceSession(client, { login: admin.login, password: 'not-the-password' }, createLogger('silent'));
    for (let i = 0; i < 10; i++) {
      session.retryNow();
      await expect(session.token()).rejects.toThrow(/cannot log in/);
    }
    const locked = (await call('GET', 'sys/locked-users')).body.data.by_namespace ?? [];
    expect(locked).toEqual([]);
    expect(await new ServiceSession(client, admin, createLogger('silent')).token()).toMatch(/^hvs\./);
  });
});
