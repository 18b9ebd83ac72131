import request from 'supertest';
import { Harness, harness } from '../support/harness';
import { ClassicDeployment, seedClassic, vaultState } from '../support/classic';
import { chainFor } from '../support/pki';
import { TestVault, startVault } from '../support/vault';

/** A Vault that Orange's remote-key-server initialised and used, seeded exactly as it writes. */
describe('a Vault holding a classic RKS deployment', () => {
  let vault: TestVault;
  let classic: ClassicDeployment;
  let h: Harness;
  const admin = { login: 'admin-rks', password: '12345' };

  beforeAll(async () => {
    vault = await startVault();
    const www = await chainFor(['www.example.com']);
    classic = await seedClassic(vault.addr, vault.rootToken, {
      admin,
      secrets: {
        'www.example.com': { certificate: www.certificate, private_key: www.privateKey, ttl: 60 },
        'placeholder.example.com': { certificate: 'certificate', private_key: 'key' },
      },
      groups: { edge: { secrets: ['www.example.com', 'placeholder.example.com'], nodes: ['node1'] }, empty: { secrets: [], nodes: [] } },
    });
    h = harness({ vaultAddrs: [vault.addr], admin });
  }, 60_000);
  afterAll(async () => {
    h?.close();
    await vault?.stop();
  });

  it('init refuses it before writing anything, naming the migration; Vault stays byte for byte as it was', async () => {
    const before = await vaultState(vault.addr, vault.rootToken);
    const res = await request(h.app).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken).expect(409);
    expect(res.body).toEqual({ errors: [expect.stringContaining("'rks migrate'")], code: 'classic_deployment' });
    expect(await vaultState(vault.addr, vault.rootToken)).toEqual(before);
    // The classic keeps working: its admin logs in with its policy, its node reads its secret.
    const login = await fetch(`${vault.addr}/v1/auth/userpass/login/${admin.login}`, { method: 'POST', body: JSON.stringify({ password: admin.password }) });
    expect(((await login.json()) as any).auth.policies).toEqual(['admin', 'default']);
    const read = await fetch(`${vault.addr}/v1/rks/data/www.example.com`, { headers: { 'X-Vault-Token': classic.nodeTokens['edge/node1'] } });
    expect(read.status).toBe(200);
  });
});
