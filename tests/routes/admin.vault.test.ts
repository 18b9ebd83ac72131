import request from 'supertest';
import { env, harness, Harness } from '../support/harness';

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
    expect(res.body).toEqual({ errors: ['invalid login or password'] });
  });

  it.each([
    ['a missing password', { login: 'admin' }],
    ['an extra field', { login: 'admin', password: 'x', otp: 1 }],
    ['a non-string password', { login: 'admin', password: 123 }],
  ])('refuses %s with 400', async (_what, body) => {
    const res = await request(h.app).post('/rks/v1/admin/login').send(body);
    expect(res.status).toBe(400);
  });

  it('rate limits attempts per source with 429', async () => {
    const limited = harness({ loginLimit: { max: 3, windowMs: 60_000 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        statuses.push((await request(limited.app).post('/rks/v1/admin/login').send({ login: 'x', password: 'y' })).status);
      }
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      const res = await request(limited.app).post('/rks/v1/admin/login').send({ login: env.adminLogin, password: env.adminPassword });
      expect(res.status).toBe(429);
      expect(res.body).toEqual({ errors: ['too many login attempts; try again later'] });
    } finally {
      limited.close();
    }
  });
});
