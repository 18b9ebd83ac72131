import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { MockCallbackServer, startMockCallbackServer } from '../../mock-callback-server/server';
import { Harness, adminToken, harness, vaultRead } from '../support/harness';
import { issue } from '../support/pki';
import { createGroup, uniq } from '../support/rks';

/**
 * Callback verification against the project's mock group manager, over real HTTPS with a
 * CA of its own that rks trusts through --callback-ca-file.
 */
describe('registration with callback verification', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-cb-'));
  const caFile = path.join(dir, 'ca.pem');
  const client = { clientId: 'rks-client', clientSecret: 's3cret-value' };
  let mock: MockCallbackServer;
  let elsewhere: MockCallbackServer;
  let h: Harness;
  let admin: string;
  let groupToken: string;
  const g = uniq('cb');

  beforeAll(async () => {
    const ca = await issue({ name: 'mock manager CA', ca: true });
    const server = await issue({ name: 'mock manager', issuer: ca, ips: ['127.0.0.1'] });
    fs.writeFileSync(caFile, ca.certPem);
    mock = await startMockCallbackServer({ cert: server.certPem, key: server.keyPem, ...client, allowed: ['good-1'] });
    elsewhere = await startMockCallbackServer({ cert: server.certPem, key: server.keyPem, ...client, allowed: ['good-1'] });
    h = harness({ callbackTimeout: 1, callbackCaFile: [caFile] });
    admin = await adminToken(h.app);
    groupToken = await createGroup(h.app, admin, g, {
      callbackURL: mock.callbackURL,
      oauthURL: mock.oauthURL,
      oauthClientID: client.clientId,
      oauthClientSecret: client.clientSecret,
    });
  });
  afterAll(async () => {
    h.close();
    await mock.close();
    await elsewhere.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    mock.requests.length = 0;
    for (const k of Object.keys(mock.behaviour)) delete (mock.behaviour as Record<string, unknown>)[k];
  });

  const register = (nodeId: string, app = h.app) =>
    request(app).post('/rks/v1/node').set('X-Vault-Token', groupToken).set('X-LCDN-nodeId', nodeId);
  /** The mock's own management API, over HTTPS with its CA. */
  const manage = (method: string, nodeId: string) =>
    new Promise<number>((resolve, reject) => {
      const req = https.request(`${mock.callbackURL}/${nodeId}`, { method, ca: fs.readFileSync(caFile) }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
  const noRole = async (nodeId: string) => expect((await vaultRead(`auth/token/roles/rks_node_${g}_${nodeId}`)).status).toBe(404);

  it('admits an allowed node (201) after OAuth client credentials and a Bearer callback', async () => {
    const res = await register('good-1');
    expect(res.status).toBe(201);
    const [oauth, callback] = mock.requests;
    expect(oauth).toMatchObject({
      method: 'POST',
      path: '/api/identity/oauth/token',
      query: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret },
      authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
    });
    expect(callback).toMatchObject({ method: 'GET', path: '/callback/nodes/good-1', authorization: expect.stringMatching(/^Bearer .+/) });
  });

  it('refuses a node the manager does not know (403) and creates nothing', async () => {
    const res = await register('stranger');
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ errors: ["node 'stranger' was refused by the group's callback (403)"], code: 'callback_refused' });
    await noRole('stranger');
  });

  it('admits a node once the manager allows it, refuses it again once disallowed', async () => {
    await manage('PUT', 'late');
    expect((await register('late')).status).toBe(201);
    await manage('DELETE', 'late');
    expect(mock.allowed.has('late')).toBe(false);
    expect((await register('late')).status).toBe(403);
  });

  it('a 404 from the callback refuses (403)', async () => {
    mock.behaviour.callbackStatus = 404;
    expect((await register('good-1')).status).toBe(403);
  });

  it.each([500, 401, 418])('a %i from the callback is 502', async (status) => {
    mock.behaviour.callbackStatus = status;
    const res = await register('good-1');
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ errors: [`callback answered ${status}`] });
  });

  it('an OAuth failure is 502 and the callback is not called', async () => {
    mock.behaviour.oauthStatus = 401;
    const res = await register('good-1');
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ errors: ['OAuth token request answered 401'] });
    expect(mock.requests.map((r) => r.path)).toEqual(['/api/identity/oauth/token']);
  });

  it('wrong OAuth client credentials are 502', async () => {
    const g2 = uniq('cbbad');
    const t = await createGroup(h.app, admin, g2, {
      callbackURL: mock.callbackURL,
      oauthURL: mock.oauthURL,
      oauthClientID: client.clientId,
      oauthClientSecret: 'wrong',
    });
    const res = await request(h.app).post('/rks/v1/node').set('X-Vault-Token', t).set('X-LCDN-nodeId', 'good-1');
    expect(res.status).toBe(502);
    expect(JSON.stringify(res.body)).not.toContain('wrong');
  });

  it('a slow callback is 502 after the timeout, and other requests go on meanwhile', async () => {
    mock.behaviour.delayMs = 3000;
    const started = Date.now();
    const pending = register('good-1');
    const health = await request(h.app).get('/healthz');
    expect(health.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(900);
    const res = await pending;
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ errors: ['callback failed: no complete answer within 1 s'] });
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('a callback that trickles its answer is 502 within the deadline (1 s) plus 1 s, and nothing is created', async () => {
    mock.behaviour.trickleMs = 200;
    const started = Date.now();
    const res = await register('good-1');
    const took = Date.now() - started;
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ errors: ['callback failed: no complete answer within 1 s'] });
    expect(took).toBeLessThan(2000);
  });

  it('an answer larger than the bound is 502', async () => {
    mock.behaviour.answerBytes = 200 * 1024;
    const res = await register('good-1');
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ errors: ['callback failed: answer larger than 65536 bytes'] });
  });

  it('the trust store follows a changed CA file without a restart', async () => {
    const rotatedFile = path.join(dir, 'rotated.pem');
    const other = await issue({ name: 'some other CA', ca: true });
    fs.writeFileSync(rotatedFile, other.certPem);
    const follows = harness({ callbackTimeout: 1, callbackCaFile: [rotatedFile] }, undefined, { callback: { caCheckMs: 50 } });
    try {
      const before = await register('good-1', follows.app);
      expect(before.status).toBe(502);
      expect(before.body.errors[0]).toMatch(/TLS verification failed/);
      fs.copyFileSync(caFile, rotatedFile);
      await new Promise((r) => setTimeout(r, 100));
      expect((await register('good-1', follows.app)).status).toBe(201);
    } finally {
      follows.close();
    }
  });

  it('a redirect to another origin is not followed (502); the other host sees nothing', async () => {
    mock.behaviour.redirectTo = `${elsewhere.callbackURL}`;
    elsewhere.requests.length = 0;
    const res = await register('good-1');
    expect(res.status).toBe(502);
    expect(res.body.errors[0]).toMatch(/redirect to another origin/);
    expect(elsewhere.requests).toEqual([]);
  });

  it('an untrusted certificate is 502, unless --callback-insecure', async () => {
    const strict = harness({ callbackTimeout: 1 });
    const insecure = harness({ callbackTimeout: 1, callbackInsecure: true });
    try {
      const res = await register('good-1', strict.app);
      expect(res.status).toBe(502);
      expect(res.body.errors[0]).toMatch(/OAuth token request failed: TLS verification failed/);
      expect((await register('good-1', insecure.app)).status).toBe(201);
    } finally {
      strict.close();
      insecure.close();
    }
  });

  it('a refused manager does not stop a group without callback', async () => {
    const plain = uniq('plain');
    const t = await createGroup(h.app, admin, plain);
    mock.behaviour.callbackStatus = 500;
    const res = await request(h.app).post('/rks/v1/node').set('X-Vault-Token', t).set('X-LCDN-nodeId', 'n1');
    expect(res.status).toBe(201);
    expect(mock.requests).toEqual([]);
  });
});
