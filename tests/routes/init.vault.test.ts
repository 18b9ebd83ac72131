import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import type { Config } from '../../src/config';
import { createLogger } from '../../src/log';
import { shardOf } from '../../src/secrets/catalog';
import { VaultClient } from '../../src/vault/client';
import { LAYOUT } from '../../src/vault/layout';
import { nodePolicy } from '../../src/vault/policies';
import { ServiceSession } from '../../src/vault/session';
import { Harness, harness } from '../support/harness';
import { issue } from '../support/pki';
import { NO_CALLBACK } from '../support/rks';
import { Running, httpsRequest, peerCertificate, runRks } from '../support/serve';
import { TestVault, freePort, startVault, vaultClient } from '../support/vault';

/**
 * Init needs a Vault rks has never touched, so this suite starts a dev server of its own;
 * every other suite shares the run's initialised one.
 */
describe('POST /rks/v1/init', () => {
  let vault: TestVault;
  let client: VaultClient;
  let app: Harness['app'];
  const admin = { login: 'ops-admin', password: 'correct horse battery staple' };
  const ephemeralFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rks-init-')), 'ephemeral.pem');
  let served: Running;
  let servedPort: number;

  const read = async (path: string) => {
    const res = await fetch(`${vault.addr}/v1/${path}`, { headers: { 'X-Vault-Token': vault.rootToken } });
    return { status: res.status, body: res.status === 204 ? null : (await res.json()) as any };
  };

  const opened: Harness[] = [];
  /** An rks app on this suite's own Vault. */
  const appOn = (overrides: Partial<Config> = {}) => {
    const h = harness({ vaultAddrs: [vault.addr], admin, ...overrides });
    opened.push(h);
    return h.app;
  };

  /** What a refused init must leave untouched. */
  const snapshot = async () => {
    const data = async (path: string) => (await read(path)).body?.data ?? null;
    const policies = ((await data('sys/policies/acl?list=true')).keys as string[]).sort();
    return {
      mounts: await data('sys/mounts'),
      auth: await data('sys/auth'),
      policies: await Promise.all(policies.map((p) => data(`sys/policies/acl/${p}`))),
      tokenRoles: await data('auth/token/roles?list=true'),
      serviceRole: await data('auth/rks-service/role/rks'),
      serviceRoleId: await data('auth/rks-service/role/rks/role-id'),
      secretIds: await data('auth/rks-service/role/rks/secret-id?list=true'),
      userpassTune: await data('sys/auth/userpass/tune'),
      config: await data('rks/metadata/config'),
      kvConfig: await data('rks/config'),
      users: await data('auth/userpass/users?list=true'),
    };
  };

  beforeAll(async () => {
    vault = await startVault();
    client = vaultClient(vault.addr);
    app = appOn();
    servedPort = await freePort();
    served = runRks(['serve', '--listen', `127.0.0.1:${servedPort}`, '--ephemeral-cert-out', ephemeralFile], {
      RKS_VAULT_ADDR: vault.addr,
      RKS_ADMIN_LOGIN: admin.login,
      RKS_ADMIN_PASSWORD: admin.password,
    });
  }, 60_000);
  afterAll(async () => {
    await served.stop();
    client.close();
    for (const h of opened) h.close();
    await vault.stop();
    fs.rmSync(path.dirname(ephemeralFile), { recursive: true, force: true });
  });

  it('refuses a bad token with 403 and changes nothing', async () => {
    const res = await request(app).post('/rks/v1/init').set('X-Vault-Token', 'not-a-token');
    expect(res.status).toBe(403);
    expect(res.body.errors[0]).toMatch(/permission denied/);
    expect((await read('sys/mounts')).body.data['rks/']).toBeUndefined();
  });

  it('refuses a missing token with 403', async () => {
    expect((await request(app).post('/rks/v1/init')).status).toBe(403);
  });

  it('refuses a valid non-root token with 403 and changes nothing', async () => {
    const res = await fetch(`${vault.addr}/v1/auth/token/create`, {
      method: 'POST',
      headers: { 'X-Vault-Token': vault.rootToken },
      body: JSON.stringify({ policies: ['default'] }),
    });
    const token = ((await res.json()) as any).auth.client_token;
    expect((await request(app).post('/rks/v1/init').set('X-Vault-Token', token)).status).toBe(403);
    expect((await read('sys/mounts')).body.data['rks/']).toBeUndefined();
  });

  it('a running rks serves an ephemeral certificate before init', async () => {
    await served.waitFor('rks listening');
    expect(served.output()).toContain('serving with an ephemeral self-signed certificate');
    expect((await peerCertificate(servedPort)).subject.O).toBe('rks ephemeral');
    // Alive, but not ready: Vault has no rks in it yet.
    const live = await httpsRequest(`https://127.0.0.1:${servedPort}/healthz`, { ca: fs.readFileSync(ephemeralFile) });
    expect(live.status).toBe(200);
    const ready = await httpsRequest(`https://127.0.0.1:${servedPort}/readyz`, { ca: fs.readFileSync(ephemeralFile) });
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body).reasons).toEqual(['rks cannot log in to Vault: not initialised, or wrong admin credentials']);
  });

  it('initialises with the root token, no Content-Type and no body (201), and switches to a CA certificate', async () => {
    const res = await httpsRequest(`https://127.0.0.1:${servedPort}/rks/v1/init`, {
      method: 'POST',
      ca: fs.readFileSync(ephemeralFile),
      headers: { 'X-Vault-Token': vault.rootToken },
    });
    expect(res.status).toBe(201);
    await served.waitFor('serving with a certificate from the rks CA', 5000);
    const peer = await peerCertificate(servedPort);
    expect(peer.issuer.CN).toBe('rks CA');
    const ca = (await read('rks-pki/cert/ca')).body.data.certificate as string;
    // Ready within a second (a readiness answer is reused for half a second).
    const deadline = Date.now() + 1000;
    let ready = await httpsRequest(`https://127.0.0.1:${servedPort}/readyz`, { ca });
    while (ready.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      ready = await httpsRequest(`https://127.0.0.1:${servedPort}/readyz`, { ca });
    }
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'ready', reasons: [] });
  });

  it('left Vault with a KV v2 mount, userpass, the admin policy and the admin user', async () => {
    const mounts = (await read('sys/mounts')).body.data;
    expect(mounts['rks/']).toMatchObject({ type: 'kv', options: { version: '2' } });
    const auth = (await read('sys/auth')).body.data;
    expect(auth['userpass/']).toMatchObject({ type: 'userpass' });
    const policy = (await read('sys/policies/acl/rks_admin')).body.data.policy as string;
    expect(policy).toContain('path "rks/data/*"');
    const user = (await read(`auth/userpass/users/${admin.login}`)).body.data;
    expect(user.token_policies).toEqual(['rks_admin']);
    expect((await read('rks/config')).body.data.max_versions).toBe(2);
    expect(mounts['rks-pki/']).toMatchObject({ type: 'pki' });
    const ca = (await read('rks-pki/cert/ca')).body.data.certificate as string;
    expect(new X509Certificate(ca).subject).toBe('CN=rks CA');
    // Generated inside Vault: the key is not exportable.
    const key = (await read('rks-pki/key/default')).body.data;
    expect(key.key_type).toBe('ec');
    expect(JSON.stringify(key)).not.toContain('PRIVATE KEY');
    for (const role of ['server', 'client']) expect((await read(`rks-pki/roles/${role}`)).status).toBe(200);
    expect((await read('rks-pki/roles/server')).body.data).toMatchObject({ server_flag: true, client_flag: true });
    expect((await read('rks-pki/roles/client')).body.data).toMatchObject({ server_flag: false, client_flag: true, no_store: true });
    const config = (await read('rks/data/config')).body.data.data;
    expect(config).toMatchObject({ initialized: true, layout: LAYOUT });
    expect(JSON.stringify(config)).not.toContain(admin.password);
  });

  it('lets the configured admin log in; the token carries only rks_admin', async () => {
    const res = await request(app).post('/rks/v1/admin/login').send(admin);
    expect(res.status).toBe(200);
    const lookup = await fetch(`${vault.addr}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': res.body.adminToken } });
    expect(((await lookup.json()) as any).data.policies).toEqual(['default', 'rks_admin']);
  });

  it('a second init is 409', async () => {
    const res = await request(app).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken);
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ errors: ['rks is already initialised'], code: 'already_initialised' });
  });

  it('a refused init writes nothing: mounts, auth methods, policies, roles and rks/ as they were', async () => {
    const before = await snapshot();
    expect((await request(app).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken)).status).toBe(409);
    expect(await snapshot()).toEqual(before);
  });

  it('brings a Vault that an older rks initialised (no service identity) up to date: 200 with what changed', async () => {
    const write = (path: string, body: unknown, method = 'POST') =>
      fetch(`${vault.addr}/v1/${path}`, { method, headers: { 'X-Vault-Token': vault.rootToken }, body: JSON.stringify(body) });
    // A group with a node, from before: no token accessor record, no node record.
    const rootApp = request(app);
    const created = await rootApp.post('/rks/v1/group/before').set('X-Vault-Token', vault.rootToken).send(NO_CALLBACK);
    expect(created.status).toBe(201);
    const nodeToken = (await request(app).post('/rks/v1/node').set('X-Vault-Token', created.body.groupToken).set('X-LCDN-nodeId', 'old-node').expect(201)).body.nodeToken;
    // Its secret, as layout 3 held it: one list, and a node policy naming the secret itself.
    const fqdn = 'before.example.com';
    const leaf = await issue({ name: fqdn, dns: [fqdn] });
    await rootApp.post(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', vault.rootToken).send({ data: { certificate: leaf.certPem, private_key: leaf.keyPem } }).expect(201);
    await write('rks/data/groups/before/secret-list', { data: { secrets: [fqdn] } });
    await write('rks/metadata/groups/before/serial', {}, 'DELETE');
    // Its expiry in the index that came before the catalog, and no catalog entry.
    await write('rks/data/index/expiry/2a', { data: { expires: { [fqdn]: 1 } } });
    const shards = (await read('rks/metadata/index/catalog/?list=true')).body.data.keys as string[];
    for (const shard of shards) await write(`rks/metadata/index/catalog/${shard}`, {}, 'DELETE');
    const layout3 = ['auth/token/lookup-self', 'auth/token/renew-self', `rks/data/${fqdn}`].map((p) => `path "${p}" { capabilities = ["read", "update"] }`);
    await write('sys/policies/acl/rks_node_before', { policy: layout3.join('\n') });
    const nodeRead = () => request(app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', nodeToken);
    expect((await nodeRead()).status).toBe(200);
    expect((await request(app).get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).expect(200)).body.secrets).toEqual([fqdn]);
    const refused = await rootApp.post(`/rks/v1/group/before/secrets/${fqdn}`).set('X-Vault-Token', vault.rootToken);
    expect([refused.status, refused.body.code]).toEqual([409, 'layout_outdated']);
    await write('rks/metadata/groups/before/grouptoken-accessor', {}, 'DELETE');
    await write('rks/metadata/groups/before/nodes/old-node', {}, 'DELETE');
    // Roles that could make batch tokens, and a group token policy that let its token set anything.
    await write('auth/token/roles/rks_node_before_old-node', { token_type: 'default' });
    await write('sys/policies/acl/rks_grouptoken_before', { policy: 'path "auth/token/create/rks_node_before_*" { capabilities = ["update"] }' });
    await write('rks-pki/roles/client', { no_store: false });
    // What layout 1 left: no AppRole, no rks_service policy, Vault's default user lockout.
    await write('sys/auth/rks-service', {}, 'DELETE');
    await write('sys/policies/acl/rks_service', {}, 'DELETE');
    await write('sys/auth/userpass/tune', { user_lockout_config: { lockout_threshold: '5' } });
    const config = (await read('rks/data/config')).body.data.data;
    await write('rks/data/config', { data: { ...config, layout: 1 } });

    // An rks meanwhile does its own work with the admin login, and says why.
    const lines: string[] = [];
    const old = new ServiceSession(client, admin, createLogger('warn', { write: (l: string) => void lines.push(l) }));
    expect(await old.token()).toMatch(/^hvs\./);
    expect(lines.join('')).toMatch(/run init again/);

    // The node reads all along: no moment in which the move refuses it.
    let upgrading = true;
    const reads: number[] = [];
    const reader = (async () => {
      while (upgrading) reads.push((await nodeRead()).status);
    })();
    const res = await request(app).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken);
    upgrading = false;
    await reader;
    expect(res.status).toBe(200);
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.filter((s) => s !== 200)).toEqual([]);
    expect(res.body.upgraded).toEqual(expect.arrayContaining(['service identity', 'admin login lockout settings']));
    expect((await read('rks/data/config')).body.data.data).toMatchObject({ layout: LAYOUT, upgradedAt: expect.any(String) });
    expect((await read('sys/policies/acl/rks_node_before')).body.data.policy).toBe(nodePolicy('before'));
    expect((await read('rks/data/groups/before/secret-list')).status).toBe(404);
    expect((await read(`rks/data/groups/before/secrets/${fqdn}`)).body.data.data.certificate).toBe(leaf.certPem);
    expect((await read('rks/metadata/index/expiry/?list=true')).status).toBe(404);
    expect((await read(`rks/data/index/catalog/${shardOf(fqdn)}`)).body.data.data.secrets[fqdn]).toMatchObject({ groups: ['before'], info: { notAfter: leaf.cert.notAfter.toISOString() } });
    const listed = await request(app).get(`/rks/v1/secret/${fqdn}/info`).set('X-Vault-Token', vault.rootToken);
    expect((await request(app).get('/rks/v1/secrets').query({ group: 'before' }).set('X-Vault-Token', vault.rootToken)).body.secrets).toEqual([listed.body]);
    expect(listed.body).toMatchObject({ name: fqdn, groups: ['before'], notAfter: leaf.cert.notAfter.toISOString() });
    expect((await nodeRead()).status).toBe(200);
    expect((await request(app).get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).expect(200)).body.secrets).toEqual([fqdn]);
    await rootApp.delete(`/rks/v1/group/before/secrets/${fqdn}`).set('X-Vault-Token', vault.rootToken).expect(204);
    expect((await nodeRead()).status).toBe(403);
    expect((await read('auth/token/roles/rks_node_before_old-node')).body.data.token_type).toBe('service');
    expect((await read('sys/policies/acl/rks_grouptoken_before')).body.data.policy).toContain('"display_name" = []');
    expect((await read('rks-pki/roles/client')).body.data.no_store).toBe(true);
    expect((await read('sys/auth/userpass/tune')).body.data.user_lockout_threshold).toBe(20);
    expect((await read('rks/data/groups/before/grouptoken-accessor')).body.data.data.accessor).toMatch(/\S/);
    expect((await read('rks/data/groups/before/nodes/old-node')).status).toBe(200);

    const fresh = new ServiceSession(client, admin, createLogger('silent'));
    const self = await fetch(`${vault.addr}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': await fresh.token() } });
    expect(((await self.json()) as any).data.policies).toEqual(['rks_service']);
    expect((await request(app).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken)).status).toBe(409);
  });

  it('moves managed secrets from layout 5 (one schedule entry, a policy naming each) with no renewal missed, while nodes read them', async () => {
    const write = async (path: string, body: unknown, method = 'POST') => {
      const res = await fetch(`${vault.addr}/v1/${path}`, { method, headers: { 'X-Vault-Token': vault.rootToken }, body: JSON.stringify(body) });
      expect([path, res.status < 300]).toEqual([path, true]);
    };
    const rootApp = request(app);
    const created = await rootApp.post('/rks/v1/group/moved').set('X-Vault-Token', vault.rootToken).send(NO_CALLBACK).expect(201);
    const nodeToken = (await rootApp.post('/rks/v1/node').set('X-Vault-Token', created.body.groupToken).set('X-LCDN-nodeId', 'n1').expect(201)).body.nodeToken;
    // A managed secret made now, then put back as layout 5 held it: its record whole at
    // rks/data/<fqdn>, its copy beside pushed ones, its state in the one schedule entry, and rks's
    // identity granted it by name.
    const fqdn = 'managed-before.example.com';
    await rootApp.post(`/rks/v1/secret/${fqdn}/managed`).set('X-Vault-Token', vault.rootToken).send({ lifetime: 7200, ttl: 30 }).expect(201);
    await rootApp.post(`/rks/v1/group/moved/secrets/${fqdn}`).set('X-Vault-Token', vault.rootToken).expect(201);
    const material = (await read(`rks/data/managed/secrets/${fqdn}`)).body.data.data;
    const state = (await read(`rks/data/managed/state/${fqdn}`)).body.data.data;
    const copy = (await read(`rks/data/groups/moved/managed/${fqdn}`)).body.data.data;
    await write(`rks/data/${fqdn}`, { data: material });
    await write(`rks/data/groups/moved/secrets/${fqdn}`, { data: copy });
    for (const p of [`groups/moved/managed/${fqdn}`, `managed/secrets/${fqdn}`, `managed/state/${fqdn}`, `managed/due/${Math.floor(state.renewAt / 3600)}/${state.renewAt}-${fqdn}`]) await write(`rks/metadata/${p}`, {}, 'DELETE');
    // And one from an ACME CA still waiting for its first certificate: in the schedule alone.
    const waiting = 'waiting-before.example.com';
    const pendingSpec = { issuer: 'some-acme', sans: [waiting], keyType: 'ec-p256' };
    await write('rks/data/index/managed', { data: { secrets: { [fqdn]: state, [waiting]: { renewAt: 1_000_000, failures: 2, lastError: 'rateLimited', pending: { spec: pendingSpec } } } } });
    await write('sys/policies/acl/rks_managed', { policy: `path "rks/data/${fqdn}" { capabilities = ["create", "read", "update"] }` });
    await write('auth/rks-service/role/rks', { token_policies: ['rks_service', 'rks_managed'] });
    const layout5Node = nodePolicy('moved').split('\npath ').filter((b) => !b.includes('/managed/')).join('\npath ');
    await write('sys/policies/acl/rks_node_moved', { policy: layout5Node });
    const config = (await read('rks/data/config')).body.data.data;
    await write('rks/data/config', { data: { ...config, layout: 5 } });
    const nodeRead = () => request(app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', nodeToken);
    expect((await nodeRead()).body.data.certificate).toBe(material.certificate);
    // One made by this rks before init ran: its copy would go where these nodes may not read yet.
    const early = 'early.example.com';
    await rootApp.post(`/rks/v1/secret/${early}/managed`).set('X-Vault-Token', vault.rootToken).send({}).expect(201);
    const refused = await rootApp.post(`/rks/v1/group/moved/secrets/${early}`).set('X-Vault-Token', vault.rootToken);
    expect([refused.status, refused.body.code]).toEqual([409, 'layout_outdated']);

    let upgrading = true;
    const reads: number[] = [];
    const reader = (async () => {
      while (upgrading) reads.push((await nodeRead()).status);
    })();
    const res = await rootApp.post('/rks/v1/init').set('X-Vault-Token', vault.rootToken);
    upgrading = false;
    await reader;
    expect([res.status, res.body.upgraded]).toEqual([200, ['layout version']]);
    expect(reads.filter((s) => s !== 200)).toEqual([]);

    // What layout 6 holds: the stub, the certificate and key apart, the state with its date and its mark, the copy in managed/.
    expect((await read(`rks/data/${fqdn}`)).body.data.data).toEqual({ managed: material.managed, meta: { ttl: 30 } });
    expect((await read(`rks/data/managed/secrets/${fqdn}`)).body.data.data.certificate).toBe(material.certificate);
    const { inProgress: _p, claim: _c, ...kept } = state;
    expect((await read(`rks/data/managed/state/${fqdn}`)).body.data.data).toEqual(kept);
    expect((await read(`rks/metadata/managed/due/${Math.floor(state.renewAt / 3600)}?list=true`)).body.data.keys).toContain(`${state.renewAt}-${fqdn}`);
    expect((await read(`rks/data/groups/moved/managed/${fqdn}`)).body.data.data.certificate).toBe(material.certificate);
    expect((await read(`rks/data/groups/moved/secrets/${fqdn}`)).status).toBe(404);
    expect((await read(`rks/data/${waiting}`)).body.data.data).toEqual({ managed: pendingSpec });
    expect((await read(`rks/data/managed/state/${waiting}`)).body.data.data).toMatchObject({ renewAt: 1_000_000, failures: 2, pending: true });
    // What rks's identity renews to, in a record only the administrator's calls write.
    expect((await read(`rks/data/managed/spec/${waiting}`)).body.data.data).toEqual({ spec: pendingSpec });
    expect((await read(`rks/data/managed/spec/${fqdn}`)).body.data.data).toEqual({ spec: material.managed, ttl: 30 });
    expect((await read('rks/data/index/managed')).status).toBe(404);
    expect((await read('sys/policies/acl/rks_managed')).status).toBe(404);
    expect((await read('sys/policies/acl/rks_node_moved')).body.data.policy).toBe(nodePolicy('moved'));
    expect((await request(app).get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).expect(200)).body.secrets).toEqual([fqdn]);
    const listed = (await rootApp.get('/rks/v1/secrets').query({ renewal: 'failing' }).set('X-Vault-Token', vault.rootToken).expect(200)).body.secrets;
    expect(listed.map((x: { name: string }) => x.name)).toEqual([waiting]);
    expect(listed[0]).toMatchObject({ pending: true, renewal: { status: 'failing', failures: 2, lastError: 'rateLimited' } });

    // Renewed when due, by rks's identity alone, and served to the node.
    const fresh = harness({ vaultAddrs: [vault.addr], admin });
    opened.push(fresh);
    await fresh.services.session.run((t) => (fresh.services.managed as unknown as { renew(t: string, f: string, at: number): Promise<void> }).renew(t, fqdn, state.renewAt + 1));
    const renewed = (await read(`rks/data/managed/secrets/${fqdn}`)).body.data;
    expect(renewed.metadata.version).toBe(2);
    expect((await nodeRead()).body.data.certificate).toBe(renewed.data.certificate);
    await rootApp.delete(`/rks/v1/group/moved/secrets/${fqdn}`).set('X-Vault-Token', vault.rootToken).expect(204);
    await rootApp.post(`/rks/v1/group/moved/secrets/${early}`).set('X-Vault-Token', vault.rootToken).expect(201);
    await rootApp.delete(`/rks/v1/group/moved/secrets/${early}`).set('X-Vault-Token', vault.rootToken).expect(204);
    for (const n of [fqdn, waiting, early]) await rootApp.delete(`/rks/v1/secret/${n}`).set('X-Vault-Token', vault.rootToken).expect(204);
    expect((await read(`rks/metadata/managed/secrets/${fqdn}`)).status).toBe(404);
    expect((await read(`rks/data/managed/state/${waiting}`)).status).toBe(404);
  });

  it('re-keys the service identity to a changed admin password, and only to the one Vault has', async () => {
    const rotated = { ...admin, password: 'a new admin password' };
    const setPassword = (password: string) =>
      fetch(`${vault.addr}/v1/auth/userpass/users/${admin.login}/password`, {
        method: 'POST',
        headers: { 'X-Vault-Token': vault.rootToken },
        body: JSON.stringify({ password }),
      });
    // An rks with a password Vault does not have may not take the identity away.
    const before = await snapshot();
    const wrong = await request(appOn({ admin: rotated })).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken);
    expect(wrong.status).toBe(409);
    expect(wrong.body.errors[0]).toMatch(/admin password is not the one Vault has/);
    expect(await snapshot()).toEqual(before);

    // The README's procedure: change it in Vault, then init from an rks that has the new one.
    await setPassword(rotated.password);
    const res = await request(appOn({ admin: rotated })).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ upgraded: ['service identity'] });
    expect(await new ServiceSession(client, rotated, createLogger('silent')).token()).toMatch(/^hvs\./);
    await expect(new ServiceSession(client, admin, createLogger('silent')).token()).rejects.toThrow(/cannot log in/);
    expect(((await read('auth/rks-service/role/rks/secret-id?list=true')).body.data.keys as string[]).length).toBe(1);

    // Back to the suite's own credentials.
    await setPassword(admin.password);
    expect((await request(app).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken)).status).toBe(200);
  });

  it('accepts an empty JSON body too, and still answers 409', async () => {
    const res = await request(app).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken).send({});
    expect(res.status).toBe(409);
  });

  it('resumes an init that stopped half-way, importing a given CA (--ca-cert)', async () => {
    const del = (path: string) => fetch(`${vault.addr}/v1/${path}`, { method: 'DELETE', headers: { 'X-Vault-Token': vault.rootToken } });
    await del('rks/metadata/config');
    await del('sys/policies/acl/rks_admin');
    await del('sys/mounts/rks-pki');
    const own = await issue({ name: 'Our Own CA', ca: true });
    const withCa = appOn({ caBundle: { certPem: own.certPem, keyPem: own.keyPem } });
    const res = await request(withCa).post('/rks/v1/init').set('X-Vault-Token', vault.rootToken);
    expect(res.status).toBe(201);
    expect((await read('sys/policies/acl/rks_admin')).status).toBe(200);
    const ca = await request(withCa).get('/ca/cert');
    expect(new X509Certificate(ca.text).fingerprint256).toBe(new X509Certificate(own.certPem).fingerprint256);
  });
});
