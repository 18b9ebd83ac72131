import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { Harness, adminToken, harness, vaultRead } from '../support/harness';
import { createLogger } from '../../src/log';
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
    expect(res.body).toMatchObject({ errors: ['request body is not valid JSON'] });
  });

  it('an unknown field is named by where it is, not by its name (which may be anything)', async () => {
    const res = await post().set('Content-Type', 'application/json').send(JSON.stringify({ data: { ...body.data, hvsSECRETfield: 1 } }));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ errors: ['body.data: unknown field'] });
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
    expect(res.body).toEqual({ errors: ['request body too large'], code: 'body_too_large' });
  });

  it('a gzip-encoded body is 400, even when it would be valid', async () => {
    const res = await post()
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send(gzipSync(JSON.stringify(body)));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ errors: ['Content-Encoding is not supported; send the body uncompressed'] });
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])('Content-Type %s is 415', async (type) => {
    const res = await post().set('Content-Type', type).send(JSON.stringify(body));
    expect(res.status).toBe(415);
    expect(res.body).toMatchObject({ errors: ['request body must be application/json'] });
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
    expect(res.body).toMatchObject({ errors: ['invalid login or password'] });
  });

  it('unknown query parameters are 400', async () => {
    const res = await request(h.app).get(`${url}?version=1`).set('X-Vault-Token', token);
    expect(res.status).toBe(400);
  });

  it('an unknown endpoint is 404 and a wrong method 405, both in the error format', async () => {
    const a = await request(h.app).get('/rks/v1/nothing').set('X-Vault-Token', token);
    expect(a.status).toBe(404);
    expect(a.body).toEqual({ errors: ['no such endpoint'], code: 'not_found' });
    const b = await request(h.app).patch(url).set('X-Vault-Token', token);
    expect(b.status).toBe(405);
    expect(b.body).toEqual({ errors: ['method not allowed'], code: 'method_not_allowed' });
    expect(b.headers.allow?.split(', ').sort()).toEqual(['DELETE', 'GET', 'POST', 'PUT']);
    const c = await request(h.app).get('/rks/v1/admin/login');
    expect(c.status).toBe(405);
    expect(c.headers.allow).toBe('POST');
  });

  it('a Content-Encoding error does not echo the header', async () => {
    const res = await post().set('Content-Type', 'application/json').set('Content-Encoding', 'x-hvs.sneaky').send('{}');
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).not.toContain('sneaky');
  });

  /** Two headers of one name (superagent sends an array as repeated headers). */
  const twice = (a: string, b: string) => [a, b] as unknown as string;
  it.each([
    ['X-Vault-Token on the secret read', () => request(h.app).get(url).set('X-Vault-Token', twice(token, token))],
    ['X-Vault-Token on a write', () => post().set('X-Vault-Token', twice(token, 'other')).send(body)],
    ['X-LCDN-nodeId on registration', () => request(h.app).post('/rks/v1/node').set('X-Vault-Token', token).set('X-LCDN-nodeId', twice('a', 'b'))],
  ])('%s given twice is 400', async (_what, send) => {
    const res = await send();
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toMatch(/given more than once/);
    expect(JSON.stringify(res.body)).not.toContain(token);
  });

  it('secret names are at most 100 characters: 101 is 400 with the rule, 100 works', async () => {
    const name = (n: number) => `${'a'.repeat(40)}.${'b'.repeat(n - 40 - 1 - '.example.com'.length)}.example.com`;
    expect(name(101)).toHaveLength(101);
    const long = await request(h.app).get(`/rks/v1/secret/${name(101)}`).set('X-Vault-Token', token);
    expect(long.status).toBe(400);
    expect(long.body.errors[0]).toMatch(/100 in all/);
    const longPost = await request(h.app).post(`/rks/v1/secret/${name(101)}`).set('X-Vault-Token', token).send(body);
    expect(longPost.status).toBe(400);
    const fits = name(100);
    expect(fits).toHaveLength(100);
    const c = await chainFor([fits]);
    const created = await request(h.app)
      .post(`/rks/v1/secret/${fits}`)
      .set('X-Vault-Token', token)
      .send({ data: { certificate: c.certificate, private_key: c.privateKey } });
    expect(created.status).toBe(201);
    expect((await request(h.app).delete(`/rks/v1/secret/${fits}`).set('X-Vault-Token', token)).status).toBe(204);
  });

  it('every answer has a request id and security headers', async () => {
    const res = await request(h.app).get('/healthz').set('X-Request-Id', 'abc-123');
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});

describe('log lines', () => {
  it('never carry the query string, of refused requests included', async () => {
    const lines: string[] = [];
    const h = harness({}, createLogger('debug', { write: (l: string) => void lines.push(l) }));
    try {
      const secret = 'hvs.CAESIQueryStringSecret';
      const refused = await request(h.app).get(`/healthz?${secret}=1`);
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ errors: ['unknown query parameter'] });
      expect((await request(h.app).get(`/healthz?token=${secret}`)).status).toBe(400);
      expect((await request(h.app).post(`/rks/v1/admin/login?password=${secret}`).send({ login: 'a', password: 'b' })).status).toBe(400);
      expect((await request(h.app).get(`/rks/v1/secret/x.example.com?${secret}`).set('X-Vault-Token', secret)).status).toBe(400);
      expect((await request(h.app).get(`/no/such/path?token=${secret}`)).status).toBe(404);
      await new Promise((r) => setImmediate(r));
      const logged = lines.join('\n');
      expect(logged).toContain('/healthz?[redacted]');
      expect(logged).not.toContain('QueryStringSecret');
    } finally {
      h.close();
    }
  });
});
