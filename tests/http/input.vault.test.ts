import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { Harness, adminToken, harness, vaultRead } from '../support/harness';
import { chainFor } from '../support/pki';

/** The input rules every endpoint shares (design §4), tried on the endpoints that take bodies. */
describe('input rules', () => {
  let h: Harness;
  let token: string;
  let body: { data: { certificate: string; private_key: string } };
  const fqdn = `input-${Math.random().toString(36).slice(2, 8)}.example.com`;
  const url = `/rks/v1/secret/${fqdn}`;

  beforeAll(async () => {
    h = harness();
    token = await adminToken(h.app);
    const c = await chainFor([fqdn]);
    body = { data: { certificate: c.certificate, private_key: c.privateKey } };
  });
  afterAll(async () => {
    expect((await vaultRead(`rks/data/${fqdn}`)).status).toBe(404);
    h.close();
  });

  const post = () => request(h.app).post(url).set('X-Vault-Token', token);

  it('malformed JSON is 400', async () => {
    const res = await post().set('Content-Type', 'application/json').send('{"data": {');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errors: ['request body is not valid JSON'] });
  });

  it.each([
    ['an unknown top-level field', () => ({ ...body, extra: 1 })],
    ['an unknown nested field', () => ({ data: { ...body.data, owner: 'x' } })],
    ['a wrong type', () => ({ data: { ...body.data, certificate: 42 } })],
    ['a missing key', () => ({ data: { certificate: body.data.certificate } })],
    ['a TTL that is not a positive integer', () => ({ data: { ...body.data, meta: { ttl: -1 } } })],
    ['a TTL as a string', () => ({ data: { ...body.data, meta: { ttl: '60' } } })],
    ['deep junk', () => ({ data: { ...body.data, meta: { ttl: 1, a: { b: { c: { d: [1, 2, { e: null }] } } } } } })],
    ['an array', () => [body]],
    ['null', () => null],
  ])('%s is 400 with a reason', async (_what, make) => {
    const res = await post().set('Content-Type', 'application/json').send(JSON.stringify(make()));
    expect(res.status).toBe(400);
    expect(res.body.errors.length).toBeGreaterThan(0);
    expect(typeof res.body.errors[0]).toBe('string');
    expect(JSON.stringify(res.body)).not.toContain('PRIVATE KEY');
  });

  it('a 1 MB body is 413', async () => {
    const big = { data: { ...body.data, certificate: 'A'.repeat(1024 * 1024) } };
    const res = await post().send(big);
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ errors: ['request body too large'] });
  });

  it('a gzip-encoded body is 400, even when it would be valid', async () => {
    const res = await post()
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send(gzipSync(JSON.stringify(body)));
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toMatch(/Content-Encoding 'gzip' is not supported/);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])('Content-Type %s is 415', async (type) => {
    const res = await post().set('Content-Type', type).send(JSON.stringify(body));
    expect(res.status).toBe(415);
    expect(res.body).toEqual({ errors: ['request body must be application/json'] });
  });

  it('a body without Content-Type is 415', async () => {
    const res = await post().send(Buffer.from(JSON.stringify(body)));
    expect(res.status).toBe(415);
  });

  it('application/json with a charset is fine', async () => {
    const res = await request(h.app)
      .post('/rks/v1/admin/login')
      .set('Content-Type', 'application/json; charset=utf-8')
      .send(JSON.stringify({ login: 'nobody', password: 'x' }));
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errors: ['invalid login or password'] });
  });

  it('unknown query parameters are 400', async () => {
    const res = await request(h.app).get(`${url}?version=1`).set('X-Vault-Token', token);
    expect(res.status).toBe(400);
  });

  it('an unknown endpoint is 404 and a wrong method 405, both in the error format', async () => {
    const a = await request(h.app).get('/rks/v1/nothing').set('X-Vault-Token', token);
    expect(a.status).toBe(404);
    expect(a.body).toEqual({ errors: ['no such endpoint'] });
    const b = await request(h.app).patch(url).set('X-Vault-Token', token);
    expect(b.status).toBe(405);
    expect(b.body).toEqual({ errors: ['method not allowed'] });
  });

  it('every answer has a request id and security headers', async () => {
    const res = await request(h.app).get('/healthz').set('X-Request-Id', 'abc-123');
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toBeDefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});
