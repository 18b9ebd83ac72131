import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { MockCallbackServer, startMockCallbackServer } from '../../mock-callback-server/server';
import { Harness, harness } from '../support/harness';
import { RunningClassic, startClassic, vaultState } from '../support/classic';
import { chainFor, issue } from '../support/pki';
import { runRks } from '../support/serve';
import { TestVault, startVault } from '../support/vault';
import { nodePolicy } from '../../src/vault/policies';

/**
 * A Vault written by the real classic remote-key-server (built from ../shared/peers and driven
 * through its own API), then attacked the way its edges could attack it, then taken over.
 */
describe('a Vault holding a classic RKS deployment', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-migrate-'));
  const admin = { login: 'admin-rks', password: '12345' };
  const oauth = { clientId: 'rks-client', clientSecret: 'manager-s3cret' };
  let vault: TestVault;
  let classic: RunningClassic;
  let mock: MockCallbackServer;
  let h: Harness;
  /** Tokens made before the migration: none may work after it. */
  const before: Record<string, string> = {};
  const plantedIds: Record<string, string> = {};
  let evilAccessor: string;

  const vaultAs = (token: string, p: string, init: { method?: string; body?: unknown } = {}) =>
    fetch(`${vault.addr}/v1/${p}`, {
      method: init.method ?? 'GET',
      headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });

  beforeAll(async () => {
    vault = await startVault();
    const ca = await issue({ name: 'group manager CA', ca: true });
    const server = await issue({ name: 'group manager', issuer: ca, ips: ['127.0.0.1'] });
    fs.writeFileSync(path.join(dir, 'manager-ca.pem'), ca.certPem);
    mock = await startMockCallbackServer({ cert: server.certPem, key: server.keyPem, ...oauth, allowed: ['edge-1', 'edge-2'] });
    classic = await startClassic(vault.devAddr, admin);

    // The classic's own users, through its own API.
    await classic.must(201, 'POST', '/rks/v1/init', { token: vault.rootToken });
    const adminToken = (await classic.must(200, 'POST', '/rks/v1/admin/login', { body: admin })).adminToken as string;
    before.classicAdmin = adminToken;
    for (const name of ['a.example.com', 'b-only.example.com', 'shared.example.com']) {
      const chain = await chainFor([name]);
      await classic.must(201, 'POST', `/rks/v1/secret/${name}`, { token: adminToken, body: { data: { certificate: chain.certificate, private_key: chain.privateKey, meta: { ttl: 60 } } } });
    }
    before.groupA = (await classic.must(201, 'POST', '/rks/v1/group/a', {
      token: adminToken,
      body: { callbackURL: mock.callbackURL, oauthURL: mock.oauthURL, oauthClientID: oauth.clientId, oauthClientSecret: oauth.clientSecret },
    })).groupToken;
    before.groupE = (await classic.must(201, 'POST', '/rks/v1/group/e', { token: adminToken, body: { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' } })).groupToken;
    before.groupB = (await classic.must(201, 'POST', '/rks/v1/group/b', { token: adminToken, body: { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' } })).groupToken;
    for (const [g, s] of [['a', 'a.example.com'], ['a', 'shared.example.com'], ['b', 'b-only.example.com'], ['b', 'shared.example.com']]) {
      await classic.must(200, 'POST', `/rks/v1/group/${g}/secrets/${s}`, { token: adminToken });
    }
    // Nodes register (a's through its group manager) and read.
    before.nodeA = (await classic.must(201, 'POST', '/rks/v1/node', { token: before.groupA, nodeId: 'edge-1' })).nodeToken;
    before.nodeB = (await classic.must(201, 'POST', '/rks/v1/node', { token: before.groupB, nodeId: 'edge-9' })).nodeToken;
    await classic.must(200, 'GET', '/rks/v1/secret/a.example.com', { token: before.nodeA });
    expect(mock.requests.some((r) => r.path === '/callback/nodes/edge-1')).toBe(true);

    // What an edge of a can do with its classic group token, straight at Vault: plant entries in
    // its list (a glob, policy text, a secret that does not exist yet, another group's secret in
    // upper case) and a role of its namespace that mints rks administrators.
    const list = ((await (await vaultAs(before.groupA, 'rks/data/groups/a/secret-list')).json()) as any).data.data;
    expect(Object.keys(list)).toEqual(['Secrets']); // as the classic really stores it
    const planted = ['*', 'x" {\n  capabilities = ["read"]\n}\npath "rks/data/*', 'future.example.com', 'B-ONLY.example.com', 'b-only.example.com', 'ok.example.com\n\u001b[8mlosses: none'];
    expect((await vaultAs(before.groupA, 'rks/data/groups/a/secret-list', { method: 'POST', body: { data: { Secrets: [...list.Secrets, ...planted] } } })).status).toBe(200);
    expect((await vaultAs(before.groupA, 'auth/token/roles/a-evil', { method: 'POST', body: { allowed_policies: ['rks_admin'], orphan: true } })).status).toBe(204);
    const evil = (await (await vaultAs(before.groupA, 'auth/token/create/a-evil', { method: 'POST', body: {} })).json()) as any;
    expect(evil.auth.policies).toContain('rks_admin');
    before.evil = evil.auth.client_token;
    evilAccessor = evil.auth.accessor;
    // And what the classic's admin policy allows anyone holding it (its edges can mint it the same
    // way): a role outside any group's namespace that mints rks's policies by glob.
    expect((await vaultAs(adminToken, 'auth/token/roles/helper', { method: 'POST', body: { allowed_policies_glob: ['rks_*'], orphan: true } })).status).toBe(204);
    const helper = (await (await vaultAs(adminToken, 'auth/token/create/helper', { method: 'POST', body: { policies: ['rks_service'] } })).json()) as any;
    expect(helper.auth.policies).toContain('rks_service');
    before.helper = helper.auth.client_token;
    // With that power: rks's own names planted before rks runs (policies, records it alone
    // writes, a role), a policy of any power and a token carrying it, a default policy that
    // grants every token rks's secrets.
    const write = async (p: string, body: unknown, expect = [200, 204]) => {
      const res = await vaultAs(adminToken, p, { method: 'POST', body });
      if (!expect.includes(res.status)) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    };
    await write('sys/policies/acl/rks_node_b', { policy: 'path "rks/data/*" { capabilities = ["read"] }' });
    await write('sys/policies/acl/rks_managed', { policy: 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }' });
    await write('rks/data/groups/b/grouptoken', { data: { groupToken: 'attacker-chosen', accessor: 'attacker-chosen' } });
    await write('rks/data/groups/b/grouptoken-accessor', { data: { accessor: 'attacker-chosen' } });
    await write('rks/data/groups/a/nodes/X', { data: { registeredAt: '2099-01-01T00:00:00Z', seenAt: '2099-01-01T00:00:00Z' } });
    // A serial would make group a count as moved already (nothing copied); a copy in b and a
    // reverse index entry naming b would make every later update write a's key where b's edges read.
    await write('rks/data/groups/a/serial', { data: { incarnation: 'planted' } });
    await write('rks/data/groups/b/secrets/a.example.com', { data: { certificate: 'planted' } });
    await write('rks/data/index/secret-groups/a.example.com', { data: { groups: ['a', 'b'] } });
    // An identity that hands rks's admin policy, once init writes it, to a userpass login that carries none.
    const root = (p: string, body: unknown) => vaultAs(vault.rootToken, p, { method: 'POST', body }).then(async (r) => (r.status === 204 ? {} : ((await r.json()) as any)));
    await root('auth/userpass/users/mallory', { password: 'mallory-pw-1', token_policies: [] });
    const entity = (await root('identity/entity', { name: 'mallory', policies: ['rks_admin'] })).data.id as string;
    const userpassAccessor = ((await (await vaultAs(vault.rootToken, 'sys/auth')).json()) as any).data['userpass/'].accessor as string;
    await root('identity/entity-alias', { name: 'mallory', canonical_id: entity, mount_accessor: userpassAccessor });
    plantedIds.entity = entity;
    await write('auth/token/roles/rks_x', { allowed_policies: ['rks_grouptoken_b'], orphan: true });
    before.rksNamed = ((await (await vaultAs(adminToken, 'auth/token/create/rks_x', { method: 'POST', body: {} })).json()) as any).auth.client_token;
    await write('sys/policies/acl/pwn', { policy: 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }' });
    await write('auth/token/roles/svc', { allowed_policies: ['pwn'], orphan: true });
    before.pwn = ((await (await vaultAs(adminToken, 'auth/token/create/svc', { method: 'POST', body: {} })).json()) as any).auth.client_token;
    // An edge erases its own group's records (so the group seems never to have been), and a
    // userpass user carries rks's admin policy before rks exists.
    for (const r of ['config', 'secret-list', 'grouptoken']) expect((await vaultAs(adminToken, `rks/metadata/groups/e/${r}`, { method: 'DELETE' })).status).toBe(204);
    expect((await vaultAs(vault.rootToken, 'auth/userpass/users/eve', { method: 'POST', body: { password: 'eve-password', token_policies: ['rks_admin'] } })).status).toBe(204);
    const stock = ((await (await vaultAs(vault.rootToken, 'sys/policies/acl/default')).json()) as any).data.policy as string;
    await write('sys/policies/acl/default', { policy: `${stock}\npath "rks/data/*" { capabilities = ["read"] }\n` });
    await classic.stop();

    h = harness({ vaultAddrs: [vault.addr], admin, callbackTimeout: 3, callbackCaFile: [path.join(dir, 'manager-ca.pem')] });
  }, 120_000);
  afterAll(async () => {
    h?.close();
    await classic?.stop();
    await mock?.close();
    await vault?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const migrate = async (args: string[]) => {
    const r = runRks(['migrate', ...args], {
      RKS_VAULT_ADDR: vault.addr,
      VAULT_TOKEN: vault.rootToken,
      RKS_ADMIN_LOGIN: admin.login,
      RKS_ADMIN_PASSWORD: admin.password,
    });
    return { code: await r.exited, out: r.output(), stdout: r.stdout() };
  };

  it('init refuses it before writing anything, naming the migration; Vault stays byte for byte as it was', async () => {
    const state = await vaultState(vault.addr, vault.rootToken);
    const res = await request(h.app).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken).expect(409);
    expect(res.body).toEqual({ errors: [expect.stringContaining("'rks migrate'")], code: 'classic_deployment' });
    expect(await vaultState(vault.addr, vault.rootToken)).toEqual(state);
    expect((await vaultAs(before.nodeA, 'rks/data/a.example.com')).status).toBe(200);
  });

  it('the dry run lists every entry of every group and what becomes of it, every token and role that goes, and the losses; it changes nothing', async () => {
    const state = await vaultState(vault.addr, vault.rootToken);
    const dry = await migrate([]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`group a: 2 secret(s), callback "${mock.callbackURL}" (OAuth "${mock.oauthURL}", client "${oauth.clientId}")`);
    expect(dry.stdout).toMatch(/^ {2}keep +a\.example\.com$/m);
    expect(dry.stdout).toMatch(/^ {2}keep +shared\.example\.com$/m);
    expect(dry.stdout).toMatch(/^ {2}DROP +"\*": not a secret name rks accepts/m);
    expect(dry.stdout).toMatch(/^ {2}DROP +"x\\" \{\\n {2}capabilities/m);
    expect(dry.stdout).toMatch(/^ {2}DROP +"future\.example\.com": the classic's node policy of the group does not grant it/m);
    expect(dry.stdout).toMatch(/^ {2}DROP +"B-ONLY\.example\.com": rks names secrets in lower case/m);
    expect(dry.stdout).toMatch(/^ {2}DROP +"b-only\.example\.com": the classic's node policy of the group does not grant it/m);
    expect(dry.stdout).not.toContain('\u001b'); // nothing a classic edge wrote reaches the terminal unquoted
    expect(dry.stdout).toMatch(/^ {2}DROP +"ok\.example\.com\\n\\u001b\[8mlosses: none"/m);
    expect(dry.stdout).toContain('group b: 2 secret(s), no callback');
    expect(dry.stdout).not.toContain(oauth.clientSecret);
    expect(dry.stdout).toMatch(/^ {2}"a-evil": in the role namespace of classic group "a"/m);
    expect(dry.stdout).toMatch(/^secrets more than one group will read: 1\n {2}shared\.example\.com: a, b$/m);
    expect(dry.stdout).toMatch(/^ {2}group "e": its records are gone \(its classic token policy or role remains\): not taken over/m);
    expect(dry.stdout).toMatch(/^userpass users to remove: "eve"$/m);
    expect(dry.stdout).toMatch(new RegExp(`^ {2}${evilAccessor} +"auth/token/create/a-evil" +\\["default", "rks_admin"\\]`, 'm'));
    expect(dry.stdout).toMatch(/^ {2}"helper": can mint tokens with rks's policies \("rks_\*"\)$/m);
    expect(dry.stdout).toContain('other token roles, left alone: "svc"');
    expect(dry.stdout).toMatch(/^ {2}the default policy, which every token carries, grants "rks\/data\/\*"/m);
    expect(dry.stdout).toMatch(/^LOSSES: 8:$/m);
    expect(dry.stdout).toMatch(/^ {2}"rks_x": named like rks's own roles/m);
    expect(dry.stdout).toMatch(/^other tokens, left alone \(--revoke-other-tokens revokes them too\): 1$/m);
    expect(dry.stdout).toContain(`policies neither the classic's nor rks's, left alone (review them: the classic's admin policy could write any): "pwn"`);
    expect(dry.stdout).toMatch(/^plan [0-9a-f]{64}: to apply exactly this plan/m);
    expect(dry.stdout).toContain('dry run: nothing changed');

    const plan = JSON.parse((await migrate(['--json'])).stdout).plan;
    expect(plan.config).toBe('classic');
    expect(plan.remove.policies.sort()).toEqual(['a', 'addtoken-a', 'addtoken-b', 'addtoken-e', 'admin', 'b', 'e', 'rks_managed', 'rks_node_b']);
    expect(plan.remove.records.sort()).toEqual(['groups/a/nodes/X', 'groups/a/serial', 'groups/b/grouptoken-accessor', 'groups/b/secrets/a.example.com', 'index/secret-groups/a.example.com']);
    expect(plan.remove.identities).toEqual([{ kind: 'entity', id: plantedIds.entity, name: 'mallory', policies: ['rks_admin'] }]);
    expect(dry.stdout).toContain(`identity entity "mallory" ("${plantedIds.entity}") carries "rks_admin": removed`);
    expect(plan.revoke.roles.map((r: { name: string }) => r.name)).toEqual(['a-edge-1', 'a-evil', 'addToken-a', 'addToken-b', 'addToken-e', 'b-edge-9', 'helper', 'rks_x']);
    const revoked = plan.revoke.tokens.map((t: { accessor: string; path: string }) => t.path);
    for (const p of ['auth/token/create/addToken-a', 'auth/token/create/addToken-b', 'auth/token/create/a-edge-1', 'auth/token/create/b-edge-9', 'auth/token/create/a-evil', 'auth/token/create/helper', 'auth/token/create/rks_x', `auth/userpass/login/${admin.login}`]) {
      expect(revoked).toContain(p);
    }
    expect(await vaultState(vault.addr, vault.rootToken)).toEqual(state);

    // Without the plan, with another plan, or without --classic-stopped, nothing happens.
    expect((await migrate(['--apply', '--classic-stopped'])).code).toBe(2);
    const other = await migrate(['--apply', '--classic-stopped', '--plan', '0000000000000000']);
    expect(other.code).toBe(1);
    expect(other.out).toContain(`it is ${plan.digest} now`);
    expect((await migrate(['--apply', '--plan', plan.digest])).code).toBe(2);
    expect(await vaultState(vault.addr, vault.rootToken)).toEqual(state);
  });

  describe('applied', () => {
    const tokenDir = path.join(dir, 'tokens');
    const digest = async () => JSON.parse((await migrate(['--json'])).stdout).plan.digest as string;

    beforeAll(async () => {
      // A mount at rks's PKI path that rks did not make (whoever holds its CA's key could pass
      // for rks): the plan names it and disables it; rks's init mounts its own.
      expect((await vaultAs(vault.rootToken, 'sys/mounts/rks-pki', { method: 'POST', body: { type: 'kv' } })).status).toBe(204);
      const planned = JSON.parse((await migrate(['--json'])).stdout).plan;
      expect(planned.remove.mounts).toEqual(['rks-pki']);
      expect((await migrate([])).stdout).toContain(`secrets engines at rks's paths, made before it ran here, to disable (their data goes): "rks-pki/"`);
      // A run that stops at its very end (the group tokens cannot be saved), then one that
      // finishes the work.
      const blocked = path.join(dir, 'not-a-directory');
      fs.writeFileSync(blocked, '');
      const stopped = await migrate(['--apply', '--classic-stopped', '--revoke-other-tokens', '--plan', planned.digest, '--token-dir', path.join(blocked, 'tokens')]);
      expect(stopped.code).toBe(1);
      expect(stopped.out).toContain('run it again to finish');
      expect(((await (await vaultAs(vault.rootToken, 'sys/mounts')).json()) as { data: Record<string, { type: string }> }).data['rks-pki/']!.type).toBe('pki');
      const applied = await migrate(['--apply', '--classic-stopped', '--plan', await digest(), '--token-dir', tokenDir]);
      expect(applied.code).toBe(0);
      expect(applied.stdout).toContain('migrated: 2 group(s)');
    }, 60_000);

    const groupToken = (g: string) => fs.readFileSync(path.join(tokenDir, `${g}.token`), 'utf8').trim();
    const register = (g: string, nodeId: string) => request(h.app).post('/rks/v1/node').set('X-Vault-Token', groupToken(g)).set('X-LCDN-nodeId', nodeId);

    it('no token made before the migration works: classic group, node and admin tokens, planted roles and their orphans; planted rks objects are gone', async () => {
      for (const [what, t] of Object.entries(before)) {
        expect([what, (await vaultAs(t, 'auth/token/lookup-self')).status]).toEqual([what, 403]);
      }
      const state = await vaultState(vault.addr, vault.rootToken);
      // Only the role the plan said it leaves alone (it mints the unknown policy it named); its token went with --revoke-other-tokens.
      expect(Object.keys(state).filter((k) => k.startsWith('role ') && !k.startsWith('role rks_'))).toEqual(['role svc']);
      for (const p of ['admin', 'a', 'b', 'e', 'addtoken-a', 'addtoken-b', 'addtoken-e']) expect(state[`policy ${p}`]).toBeUndefined();
      expect(state['user eve']).toBeUndefined();
      expect(state['policy rks_managed']).toBeUndefined();
      expect(state['policy rks_node_b']).not.toContain('rks/data/*');
      expect(state['kv groups/a/nodes/X']).toBeUndefined();
      expect((await vaultAs(vault.rootToken, `identity/entity/id/${plantedIds.entity}`)).status).toBe(404);
      const mallory = ((await (await vaultAs('', 'auth/userpass/login/mallory', { method: 'POST', body: { password: 'mallory-pw-1' } })).json()) as any).auth;
      expect(mallory.policies).not.toContain('rks_admin');
      expect(groupToken('b')).not.toBe('attacker-chosen');
      expect((await vaultAs(groupToken('b'), 'auth/token/lookup-self')).status).toBe(200);
      expect(JSON.stringify(state['kv config'])).not.toContain(admin.password);
      expect(fs.statSync(path.join(tokenDir, 'a.token')).mode & 0o777).toBe(0o600);
    });

    it('every association is kept, in rks\'s shape; the planted entries are gone from lists and policies', async () => {
      const adminToken = (await request(h.app).post('/rks/v1/admin/login').send(admin).expect(200)).body.adminToken;
      expect((await request(h.app).get('/rks/v1/group/a/secrets').set('X-Vault-Token', adminToken).expect(200)).body).toEqual(['a.example.com', 'shared.example.com']);
      expect((await request(h.app).get('/rks/v1/group/b/secrets').set('X-Vault-Token', adminToken).expect(200)).body).toEqual(['b-only.example.com', 'shared.example.com']);
      expect((await request(h.app).get('/rks/v1/secret/shared.example.com/groups').set('X-Vault-Token', adminToken).expect(200)).body.sort()).toEqual(['a', 'b']);
      expect((await request(h.app).get('/rks/v1/secret/a.example.com/groups').set('X-Vault-Token', adminToken).expect(200)).body).toEqual(['a']);
      expect((await request(h.app).get('/rks/v1/group/a').set('X-Vault-Token', adminToken).expect(200)).body).toEqual({
        callbackURL: mock.callbackURL,
        oauthURL: mock.oauthURL,
        oauthClientID: oauth.clientId,
        oauthClientSecret: oauth.clientSecret,
      });
      const policy = ((await (await vaultAs(vault.rootToken, 'sys/policies/acl/rks_node_a')).json()) as any).data.policy as string;
      expect(policy).toBe(nodePolicy('a'));
      expect(await vaultState(vault.addr, vault.rootToken)).not.toHaveProperty('kv groups/a/secret-list');
    });

    it("each group's nodes read exactly its secrets, through rks and straight from Vault; callbacks still decide", async () => {
      mock.requests.length = 0;
      const a = (await register('a', 'edge-2').expect(201)).body.nodeToken;
      expect(mock.requests.some((r) => r.path === '/callback/nodes/edge-2')).toBe(true);
      expect((await register('a', 'stranger').expect(403)).body.code).toBe('callback_refused');
      const b = (await register('b', 'edge-9').expect(201)).body.nodeToken;
      const read = (t: string, s: string) => request(h.app).get(`/rks/v1/secret/${s}`).set('X-Vault-Token', t);
      for (const [t, s, status] of [
        [a, 'a.example.com', 200], [a, 'shared.example.com', 200], [a, 'b-only.example.com', 403], [a, 'future.example.com', 403],
        [b, 'b-only.example.com', 200], [b, 'shared.example.com', 200], [b, 'a.example.com', 403],
      ] as const) {
        const [own, other] = t === a ? ['a', 'b'] : ['b', 'a'];
        expect([own, s, (await read(t, s)).status]).toEqual([own, s, status]);
        // Straight from Vault: its group's copy of what the group holds, and nothing else.
        expect([own, s, (await vaultAs(t, `rks/data/groups/${own}/secrets/${s}`)).status]).toEqual([own, s, status === 200 ? 200 : 404]);
        expect([own, s, (await vaultAs(t, `rks/data/groups/${other}/secrets/${s}`)).status]).toEqual([own, s, 403]);
        expect([own, s, (await vaultAs(t, `rks/data/${s}`)).status]).toEqual([own, s, 403]);
      }
      expect((await vaultAs(a, 'rks/data/groups/b/grouptoken')).status).toBe(403);
    });

    it('a second run changes nothing', async () => {
      const state = await vaultState(vault.addr, vault.rootToken);
      const again = await migrate(['--apply', '--classic-stopped', '--plan', await digest(), '--token-dir', path.join(dir, 'again')]);
      expect(again.code).toBe(0);
      // The tampered default policy is the one thing it cannot set right on its own.
      expect(again.stdout).toMatch(/^LOSSES: 1:\n {2}the default policy, which every token carries, grants "rks\/data\/\*"/m);
      expect(fs.readFileSync(path.join(dir, 'again', 'a.token'), 'utf8').trim()).toBe(groupToken('a'));
      expect(await vaultState(vault.addr, vault.rootToken)).toEqual(state);
    });
  });
});
