import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { runRks } from '../support/serve';
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

  describe('rks migrate', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-migrate-'));
    const migrate = async (args: string[]) => {
      const r = runRks(['migrate', ...args], {
        RKS_VAULT_ADDR: vault.addr,
        VAULT_TOKEN: vault.rootToken,
        RKS_ADMIN_LOGIN: admin.login,
        RKS_ADMIN_PASSWORD: admin.password,
      });
      return { code: await r.exited, out: r.output(), stdout: r.stdout() };
    };
    const vaultAs = (token: string, p: string) => fetch(`${vault.addr}/v1/${p}`, { headers: { 'X-Vault-Token': token } });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('a dry run reports groups, node roles, secrets rks would refuse and what goes, and changes nothing', async () => {
      const before = await vaultState(vault.addr, vault.rootToken);
      const dry = await migrate([]);
      expect(dry.code).toBe(0);
      expect(dry.out).toContain('group edge: 2 secret(s), 1 classic node role(s)');
      expect(dry.out).toMatch(/placeholder\.example\.com: not a readable PEM certificate/);
      expect(dry.out).toContain('dry run: nothing changed');
      const plan = JSON.parse((await migrate(['--json'])).stdout).plan;
      expect(plan.config).toBe('classic');
      expect(plan.remove.policies.sort()).toEqual(['addtoken-edge', 'addtoken-empty', 'admin', 'edge', 'empty']);
      expect(plan.remove.roles.map((r: string) => r.toLowerCase()).sort()).toEqual(['addtoken-edge', 'addtoken-empty', 'edge-node1']);
      expect(await vaultState(vault.addr, vault.rootToken)).toEqual(before);
      expect((await migrate(['--apply'])).code).toBe(2); // without --classic-stopped
      expect(await vaultState(vault.addr, vault.rootToken)).toEqual(before);
    });

    it('--apply takes it over: secrets and associations kept, classic tokens, roles and policies gone, new registrations work; a second run changes nothing', async () => {
      const tokenDir = path.join(dir, 'tokens');
      // A first run that stopped right after its first step (the classic's config record destroyed):
      // the next run finishes the work.
      await fetch(`${vault.addr}/v1/rks/metadata/config`, { method: 'DELETE', headers: { 'X-Vault-Token': vault.rootToken } });
      const applied = await migrate(['--apply', '--classic-stopped', '--token-dir', tokenDir]);
      expect(applied.code).toBe(0);
      expect(applied.stdout).toContain('migrated: 2 group(s)');
      const groupToken = fs.readFileSync(path.join(tokenDir, 'edge.token'), 'utf8').trim();
      expect(fs.statSync(path.join(tokenDir, 'edge.token')).mode & 0o777).toBe(0o600);

      // The classic's tokens no longer work; its policies, roles and its config record (with its admin password) are gone.
      for (const t of [classic.groupTokens.edge, classic.nodeTokens['edge/node1']]) expect((await vaultAs(t, 'auth/token/lookup-self')).status).toBe(403);
      const state = await vaultState(vault.addr, vault.rootToken);
      for (const p of ['admin', 'edge', 'empty', 'addtoken-edge', 'addtoken-empty']) expect(state[`policy ${p}`]).toBeUndefined();
      expect(Object.keys(state).filter((k) => /^role (addtoken-|edge-)/i.test(k))).toEqual([]);
      expect(JSON.stringify(state['kv config'])).not.toContain(admin.password);

      // Through rks: the admin, the groups with their secrets, the secrets with their facts.
      const adminToken = (await request(h.app).post('/rks/v1/admin/login').send(admin).expect(200)).body.adminToken;
      expect((await request(h.app).get('/rks/v1/group/edge/secrets').set('X-Vault-Token', adminToken).expect(200)).body).toEqual(['placeholder.example.com', 'www.example.com']);
      expect((await request(h.app).get('/rks/v1/secret/www.example.com/info').set('X-Vault-Token', adminToken).expect(200)).body).toMatchObject({ groups: ['edge'], ttl: 60 });
      expect((await request(h.app).get('/rks/v1/secret/placeholder.example.com/info').set('X-Vault-Token', adminToken).expect(200)).body.invalid).toBeDefined();
      // A node registers with the new group token and reads its secret; the group token reads nothing else.
      const node = (await request(h.app).post('/rks/v1/node').set('X-Vault-Token', groupToken).set('X-LCDN-nodeId', 'node1').expect(201)).body.nodeToken;
      expect((await request(h.app).get('/rks/v1/secret/www.example.com').set('X-Vault-Token', node).expect(200)).body.data.meta.ttl).toBe(60);
      expect((await vaultAs(groupToken, 'rks/data/www.example.com')).status).toBe(403);

      const before = await vaultState(vault.addr, vault.rootToken);
      const again = await migrate(['--apply', '--classic-stopped', '--token-dir', path.join(dir, 'again')]);
      expect(again.code).toBe(0);
      expect(fs.readFileSync(path.join(dir, 'again', 'edge.token'), 'utf8').trim()).toBe(groupToken);
      expect(await vaultState(vault.addr, vault.rootToken)).toEqual(before);
    });
  });
});
