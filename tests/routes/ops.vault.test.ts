import request from 'supertest';
import YAML from 'yaml';
import { adminToken, env, harness, Harness } from '../support/harness';
import { freePort } from '../support/vault';

describe('operations endpoints', () => {
  let h: Harness;
  beforeAll(() => {
    h = harness();
  });
  afterAll(() => h.close());

  it('GET /healthz is 200 (alive) and GET /readyz 200; the Vault nodes shown to an administrator only', async () => {
    expect((await request(h.app).get('/healthz')).body).toEqual({ status: 'ok' });
    const version = require('../../package.json').version;
    const stranger = await request(h.app).get('/readyz');
    expect([stranger.status, stranger.body]).toEqual([200, { status: 'ready', reasons: [], version }]);
    const admin = await adminToken(h.app);
    const ready = await request(h.app).get('/readyz').set('X-Vault-Token', admin);
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', reasons: [], vault: { active: env.vaultAddr, nodes: [{ addr: env.vaultAddr, state: 'active' }] }, version });
    // A token that is not an administrator's is a stranger's.
    const { createGroup, uniq } = await import('../support/rks');
    const groupToken = await createGroup(h.app, admin, uniq('ready'));
    expect((await request(h.app).get('/readyz').set('X-Vault-Token', groupToken)).body).toEqual({ status: 'ready', reasons: [], version });
    expect((await request(h.app).get('/readyz').set('X-Vault-Token', 'hvs.made-up')).body).toEqual({ status: 'ready', reasons: [], version });
  });

  it('Vault unreachable: /healthz stays 200, /readyz is 503 with the reason within a second, every call a fast 503 with Retry-After', async () => {
    const addr = `http://127.0.0.1:${await freePort()}`;
    const dead = harness({ vaultAddrs: [addr] });
    try {
      expect((await request(dead.app).get('/healthz')).status).toBe(200);
      const started = Date.now();
      const res = await request(dead.app).get('/readyz');
      expect(Date.now() - started).toBeLessThan(1000);
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      // A stranger is told why, not where Vault is.
      expect(res.body).toEqual({ status: 'unavailable', reasons: ['no active, unsealed vault node'], version: require('../../package.json').version });
      expect(res.text).not.toContain(addr.replace('http://', ''));
      const login = await request(dead.app).post('/rks/v1/admin/login').send({ login: 'a', password: 'b' });
      expect(login.status).toBe(503);
      expect(login.headers['retry-after']).toBe('1');
      expect(login.body).toEqual({ errors: ['vault is unreachable'], code: 'unavailable' });
    } finally {
      dead.close();
    }
  });

  it('GET /metrics counts requests by route template and Vault call latencies', async () => {
    const token = await adminToken(h.app);
    await request(h.app).get('/rks/v1/secret/nothing-here.example.com').set('X-Vault-Token', token).expect(404);
    const res = await request(h.app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toContain('rks_http_requests_total{method="GET",route="/rks/v1/secret/{fqdn}",status="404"} 1');
    expect(res.text).toMatch(/rks_http_request_duration_seconds_bucket\{[^}]*route="\/rks\/v1\/secret\/\{fqdn\}"/);
    expect(res.text).toMatch(/rks_vault_request_duration_seconds_count\{operation="kv.read",status="404"\} 1/);
    expect(res.text).not.toContain('nothing-here');
  });

  it('serves the contract as YAML and JSON, and browsable docs offline', async () => {
    const yaml = await request(h.app).get('/openapi.yaml').expect(200);
    const spec = YAML.parse(yaml.text);
    const json = await request(h.app).get('/openapi.json').expect(200);
    expect(json.body).toEqual(spec);
    const paths = Object.keys(spec.paths);
    for (const p of [
      '/rks/v1/init',
      '/rks/v1/admin/login',
      '/rks/v1/group/{group}',
      '/rks/v1/group/{group}/config',
      '/rks/v1/group/{group}/grouptoken',
      '/rks/v1/group/{group}/secrets',
      '/rks/v1/group/{group}/secrets/{fqdn}',
      '/rks/v1/group/{group}/nodes/{nodeId}',
      '/rks/v1/node',
      '/rks/v1/auth/token/renew-self',
      '/rks/v1/secret/{fqdn}',
      '/rks/v1/secret/{fqdn}/groups',
      '/healthz',
      '/readyz',
      '/metrics',
    ]) {
      expect(paths).toContain(p);
    }
    const page = await request(h.app).get('/docs').expect(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-frame-options']).toBe('SAMEORIGIN'); // as the README says of /docs
    // Every API answer: the strict set the README lists.
    const api = await request(h.app).get('/healthz');
    expect(api.headers).toMatchObject({ 'x-frame-options': 'DENY', 'cache-control': 'no-store' });
    expect(api.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.text).toContain('swagger-ui-bundle.js');
    await request(h.app).get('/docs/assets/swagger-ui-bundle.js').expect(200);
    await request(h.app).get('/docs/assets/swagger-ui.css').expect(200);
  });
});
