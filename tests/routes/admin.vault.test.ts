import request from 'supertest';
import { env, harness, Harness } from '../support/harness';
import { settingDefaults } from '../../src/settings';

describe('POST /rks/v1/admin/login', () => {
  let h: Harness;
  beforeAll(() => {
    h = harness();
  });
  afterAll(() => h.close());

  it('answers an admin token for the configured credentials', async () => {
    const res = await request(h.app).post('/rks/v1/admin/login').send({ login: env.adminLogin, password: env.adminPassword });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['adminToken']);
    const lookup = await fetch(`${env.vaultAddr}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': res.body.adminToken } });
    expect(((await lookup.json()) as any).data.policies).toContain('rks_admin');
  });

  it.each([
    ['a wrong password', { login: env.adminLogin, password: 'wrong' }],
    ['an unknown login', { login: 'mallory', password: 'x' }],
  ])('refuses %s with 400', async (_what, body) => {
    const res = await request(h.app).post('/rks/v1/admin/login').send(body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ errors: ['invalid login or password'] });
  });

  it.each([
    ['a missing password', { login: 'admin' }],
    ['an extra field', { login: 'admin', password: 'x', otp: 1 }],
    ['a non-string password', { login: 'admin', password: 123 }],
  ])('refuses %s with 400', async (_what, body) => {
    const res = await request(h.app).post('/rks/v1/admin/login').send(body);
    expect(res.status).toBe(400);
  });

  it('100 successful logins in a row from one address are all 200 (on the default limits)', async () => {
    const defaults = harness({ loginRateLimit: settingDefaults().loginRateLimit, loginFailureLimit: settingDefaults().loginFailureLimit });
    try {
      const statuses = new Set<number>();
      for (let i = 0; i < 100; i++) {
        statuses.add((await request(defaults.app).post('/rks/v1/admin/login').send({ login: env.adminLogin, password: env.adminPassword })).status);
      }
      expect([...statuses]).toEqual([200]);
    } finally {
      defaults.close();
    }
  });

  it('counts failures per login name: after the limit the name is refused (429, Retry-After) without asking Vault', async () => {
    const limited = harness({ loginRateLimit: 100, loginFailureLimit: 3 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        statuses.push((await request(limited.app).post('/rks/v1/admin/login').send({ login: 'mallory', password: `p${i}` })).status);
      }
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      const res = await request(limited.app).post('/rks/v1/admin/login').send({ login: 'Mallory', password: 'again' });
      expect(res.status).toBe(429);
      expect(res.body).toMatchObject({ errors: ['too many failed logins for this login; retry later'] });
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(800);
      // Other login names are not affected.
      expect((await request(limited.app).post('/rks/v1/admin/login').send({ login: env.adminLogin, password: env.adminPassword })).status).toBe(200);
    } finally {
      limited.close();
    }
  });

  it('counts sources by X-Forwarded-For only behind a proxy named by --trust-proxy', async () => {
    const fail = (app: typeof h.app, from: string) =>
      request(app).post('/rks/v1/admin/login').set('X-Forwarded-For', from).send({ login: `n${Math.random().toString(36).slice(2, 8)}`, password: 'x' });
    const proxied = harness({ trustProxy: ['loopback'], loginRateLimit: 2, loginFailureLimit: 100 });
    const direct = harness({ loginRateLimit: 2, loginFailureLimit: 100 });
    try {
      expect([(await fail(proxied.app, '198.51.100.1')).status, (await fail(proxied.app, '198.51.100.1')).status]).toEqual([400, 400]);
      expect((await fail(proxied.app, '198.51.100.1')).status).toBe(429);
      expect((await fail(proxied.app, '198.51.100.2')).status).toBe(400);
      // Without --trust-proxy the header is a claim like any other: the connection counts.
      expect([(await fail(direct.app, '198.51.100.3')).status, (await fail(direct.app, '198.51.100.4')).status]).toEqual([400, 400]);
      expect((await fail(direct.app, '198.51.100.5')).status).toBe(429);
    } finally {
      proxied.close();
      direct.close();
    }
  });

  it.each([
    ['a non-ASCII letter', 'é'],
    ['a slash', 'a/b'],
    ['a percent sign', '%'],
    ['a trailing space', 'admin '],
    ['a leading space', ' admin'],
    ['a dot', '.'],
    ['two dots', '..'],
    ['a leading dash', '-admin'],
    ['a trailing dot', 'admin.'],
    ['an at sign (Vault has no such users)', 'ops@example.com'],
    ['65 characters', 'a'.repeat(65)],
    ['an empty name', ''],
  ])('a login name with %s is 400 with the rule', async (_what, login) => {
    const res = await request(h.app).post('/rks/v1/admin/login').send({ login, password: 'x' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ errors: ["invalid login: use 1 to 64 letters, digits, '_', '-' or '.', starting and ending with a letter, digit or '_'"] });
  });

  it.each(['ops.team', 'a', 'Admin_2', 'first-last'])('a login name like %s passes the rule (400 from Vault, not from the rule)', async (login) => {
    const res = await request(h.app).post('/rks/v1/admin/login').send({ login, password: 'x' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ errors: ['invalid login or password'] });
  });
});
