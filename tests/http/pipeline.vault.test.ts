import request from 'supertest';
import { createLogger } from '../../src/log';
import { adminToken, harness } from '../support/harness';
import { pushSecret, uniq } from '../support/rks';

/** One pipeline for every route: the hot route gets what every other route gets. */
describe('the request pipeline', () => {
  it('answers the hot route with the same headers as any other, a request id, and a log line without the token', async () => {
    const lines: string[] = [];
    const h = harness({}, createLogger('info', { write: (l: string) => void lines.push(l) }));
    try {
      const admin = await adminToken(h.app);
      const fqdn = `${uniq('hot')}.example.com`;
      await pushSecret(h.app, admin, fqdn);
      const hot = await request(h.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', admin).set('X-Request-Id', 'hot-1');
      const chain = await request(h.app).get(`/rks/v1/secret/${fqdn}/groups`).set('X-Vault-Token', admin);
      expect(hot.status).toBe(200);
      expect(hot.headers['x-request-id']).toBe('hot-1');
      const security = Object.keys(chain.headers).filter((k) => /^(x-|strict|content-security|cache-control|referrer)/.test(k) && k !== 'x-request-id');
      expect(security.sort()).toEqual(
        ['cache-control', 'content-security-policy', 'referrer-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options'].sort(),
      );
      // Answers hold private keys: never cached.
      expect(hot.headers['cache-control']).toBe('no-store');
      for (const k of security) expect([k, hot.headers[k]]).toEqual([k, chain.headers[k]]);
      expect(hot.headers['content-type']).toBe(chain.headers['content-type']);

      const logged = lines.map((l) => JSON.parse(l)).find((l) => l.req?.id === 'hot-1');
      expect(logged).toMatchObject({ msg: 'request completed', req: { method: 'GET', url: `/rks/v1/secret/${fqdn}` }, res: { statusCode: 200 } });
      expect(lines.join('\n')).not.toContain(admin);
      expect(lines.join('\n')).not.toContain('PRIVATE KEY');
    } finally {
      h.close();
    }
  });

  it('errors keep the common format on the hot route too', async () => {
    const h = harness();
    try {
      const admin = await adminToken(h.app);
      const missing = await request(h.app).get('/rks/v1/secret/none.example.com').set('X-Vault-Token', admin);
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({ errors: ["secret 'none.example.com' not found"] });
      const bad = await request(h.app).get('/rks/v1/secret/a%2Bb.example.com').set('X-Vault-Token', admin);
      expect(bad.status).toBe(400);
      expect(bad.body.errors[0]).toMatch(/invalid secret name/);
      const encoded = await request(h.app).get('/rks/v1/secret/none.example.com').set('X-Vault-Token', admin).set('Content-Encoding', 'gzip');
      expect(encoded.status).toBe(400);
      const query = await request(h.app).get('/rks/v1/secret/none.example.com?x=1').set('X-Vault-Token', admin);
      expect(query.status).toBe(400);
    } finally {
      h.close();
    }
  });
});
