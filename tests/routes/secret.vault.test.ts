import { X509Certificate } from 'node:crypto';
import request from 'supertest';
import { Chain, DAYS, chainFor } from '../support/pki';
import { Harness, adminToken, harness, vaultRead, vaultWrite } from '../support/harness';

const uniq = () => Math.random().toString(36).slice(2, 10);

describe('secrets: /rks/v1/secret/{fqdn}', () => {
  let h: Harness;
  let token: string;
  let chain: Chain;
  const name = `www-${uniq()}.example.com`;

  beforeAll(async () => {
    h = harness();
    token = await adminToken(h.app);
    chain = await chainFor([name, `*.${name}`]);
  });
  afterAll(() => h.close());

  const secret = (c: Chain = chain, ttl?: number) => ({
    data: { certificate: c.certificate, private_key: c.privateKey, ...(ttl ? { meta: { ttl } } : {}) },
  });
  const api = () => request(h.app);

  describe('lifecycle with an admin token', () => {
    const fqdn = `life-${uniq()}.example.com`;
    let c: Chain;
    beforeAll(async () => {
      c = await chainFor([fqdn]);
    });

    it('POST stores it (201) and Vault holds the ordered chain', async () => {
      const shuffled = { data: { certificate: c.root.certPem + c.leaf.certPem + c.intermediate.certPem, private_key: c.privateKey, meta: { ttl: 120 } } };
      const res = await api().post(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token).send(shuffled);
      expect(res.status).toBe(201);
      const stored = await vaultRead(`rks/data/${fqdn}`);
      expect(stored.status).toBe(200);
      expect(stored.body.data.data).toEqual({
        certificate: c.certificate,
        private_key: c.privateKey,
        meta: { ttl: 120 },
        info: expect.objectContaining({ sha256Fingerprint: new X509Certificate(c.leaf.certPem).fingerprint256, notAfter: c.leaf.cert.notAfter.toISOString(), chainLength: 3 }),
      });
    });

    it('POST again is 409 and leaves the stored version alone', async () => {
      const res = await api().post(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token).send(secret(c));
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ errors: [`secret '${fqdn}' already exists`] });
      const meta = await vaultRead(`rks/metadata/${fqdn}`);
      expect(meta.body.data.current_version).toBe(1);
    });

    it('GET answers the secret with its TTL', async () => {
      const res = await api().get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ data: { certificate: c.certificate, private_key: c.privateKey, meta: { ttl: 120 } } });
    });

    it('names are case-insensitive', async () => {
      const res = await api().get(`/rks/v1/secret/${fqdn.toUpperCase()}`).set('X-Vault-Token', token);
      expect(res.status).toBe(200);
    });

    it('PUT replaces it (200) as a new version; the default TTL applies without meta', async () => {
      const next = await chainFor([fqdn]);
      const res = await api().put(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token).send(secret(next));
      expect(res.status).toBe(200);
      const stored = await vaultRead(`rks/data/${fqdn}`);
      expect(stored.body.data.metadata.version).toBe(2);
      expect(stored.body.data.data.private_key).toBe(next.privateKey);
      const got = await api().get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token);
      expect(got.body.data.meta).toEqual({ ttl: 300 });
    });

    it('Vault keeps the current version and the one before, no older private key', async () => {
      for (let i = 0; i < 2; i++) {
        const again = await chainFor([fqdn]);
        await api().put(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token).send(secret(again)).expect(200);
      }
      const meta = (await vaultRead(`rks/metadata/${fqdn}`)).body.data;
      expect(meta.current_version).toBe(4);
      expect(Object.keys(meta.versions).sort()).toEqual(['3', '4']);
      expect((await vaultRead(`rks/data/${fqdn}?version=1`)).status).toBe(404);
    });

    it('GET .../groups lists no group yet', async () => {
      const res = await api().get(`/rks/v1/secret/${fqdn}/groups`).set('X-Vault-Token', token);
      expect(res.status).toBe(200);
      expect(res.body).toEqual([]);
    });

    it('DELETE destroys every version (204), then GET is 404', async () => {
      const res = await api().delete(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token);
      expect(res.status).toBe(204);
      expect((await vaultRead(`rks/metadata/${fqdn}`)).status).toBe(404);
      const got = await api().get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token);
      expect(got.status).toBe(404);
      expect(got.body).toMatchObject({ errors: [`secret '${fqdn}' not found`] });
    });

    it('DELETE, PUT and .../groups of an unknown secret are 404', async () => {
      expect((await api().delete(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token)).status).toBe(404);
      expect((await api().put(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token).send(secret(c))).status).toBe(404);
      expect((await vaultRead(`rks/metadata/${fqdn}`)).status).toBe(404);
      expect((await api().get(`/rks/v1/secret/${fqdn}/groups`).set('X-Vault-Token', token)).status).toBe(404);
    });
  });

  it('a wildcard secret is stored under its own name', async () => {
    const wild = `*.wild-${uniq()}.example.com`;
    const c = await chainFor([wild]);
    expect((await api().post(`/rks/v1/secret/${wild}`).set('X-Vault-Token', token).send(secret(c))).status).toBe(201);
    expect((await vaultRead(`rks/data/${wild}`)).status).toBe(200);
    expect((await api().get(`/rks/v1/secret/${wild}`).set('X-Vault-Token', token)).status).toBe(200);
  });

  it('DELETE refuses (409) while a group still uses the secret', async () => {
    const fqdn = `used-${uniq()}.example.com`;
    const c = await chainFor([fqdn]);
    await api().post(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token).send(secret(c)).expect(201);
    await vaultWrite(`rks/data/index/secret-groups/${fqdn}`, { data: { groups: ['edge'] } });
    const res = await api().delete(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token);
    expect(res.status).toBe(409);
    expect(res.body.errors[0]).toMatch(/still associated with 'edge'/);
    expect((await vaultRead(`rks/data/${fqdn}`)).status).toBe(200);
    expect((await api().get(`/rks/v1/secret/${fqdn}/groups`).set('X-Vault-Token', token)).body).toEqual(['edge']);
  });

  describe('tokens', () => {
    it.each([
      ['no token', undefined],
      ['a bad token', 'hvs.not-a-token'],
    ])('%s gets 403 on every operation and nothing is written', async (_what, t) => {
      const fqdn = `tok-${uniq()}.example.com`;
      const c = await chainFor([fqdn]);
      const withToken = (r: request.Test) => (t ? r.set('X-Vault-Token', t) : r);
      for (const r of [
        withToken(api().post(`/rks/v1/secret/${fqdn}`)).send(secret(c)),
        withToken(api().put(`/rks/v1/secret/${name}`)).send(secret()),
        withToken(api().get(`/rks/v1/secret/${name}`)),
        withToken(api().delete(`/rks/v1/secret/${name}`)),
        withToken(api().get(`/rks/v1/secret/${name}/groups`)),
      ]) {
        const res = await r;
        expect(res.status).toBe(403);
        expect(res.body.errors).toHaveLength(1);
      }
      expect((await vaultRead(`rks/data/${fqdn}`)).status).toBe(404);
    });

    it('never uses $VAULT_TOKEN from its own environment', async () => {
      const saved = process.env.VAULT_TOKEN;
      process.env.VAULT_TOKEN = process.env.RKS_TEST_ROOT_TOKEN;
      const other = harness();
      try {
        const res = await request(other.app).get(`/rks/v1/secret/${name}`);
        expect(res.status).toBe(403);
        expect(res.body).toMatchObject({ errors: ['missing X-Vault-Token'] });
      } finally {
        other.close();
        if (saved === undefined) delete process.env.VAULT_TOKEN;
        else process.env.VAULT_TOKEN = saved;
      }
    });

    it('a token without the admin policy gets 403 and leaves Vault untouched', async () => {
      const weak = await vaultWrite('auth/token/create', { policies: ['default'], ttl: '5m' });
      const t = weak.body.auth.client_token;
      const fqdn = `weak-${uniq()}.example.com`;
      const c = await chainFor([fqdn]);
      expect((await api().post(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', t).send(secret(c))).status).toBe(403);
      expect((await vaultRead(`rks/data/${fqdn}`)).status).toBe(404);
    });
  });

  describe('TLS material is checked (400) and nothing is written', () => {
    const cases: Array<[string, () => Promise<{ data: Record<string, unknown> }>, RegExp]> = [
      ['a key that does not match', async () => secret({ ...chain, privateKey: (await chainFor([name])).privateKey }), /does not match/],
      [
        'an expired certificate',
        async () => secret(await chainFor([name], { notBefore: new Date(Date.now() - DAYS(10)), notAfter: new Date(Date.now() - DAYS(1)) })),
        /expired on/,
      ],
      ['garbage PEM', async () => ({ data: { certificate: '-----BEGIN CERTIFICATE-----\nZm9v\n-----END CERTIFICATE-----\n', private_key: chain.privateKey } }), /not a valid X.509/],
      ['a certificate for another name', async () => secret(await chainFor(['other.example.net'])), /is not valid for/],
    ];
    it.each(cases)('%s', async (_what, body, reason) => {
      const res = await api().post(`/rks/v1/secret/${name}`).set('X-Vault-Token', token).send(await body());
      expect(res.status).toBe(400);
      expect(res.body.errors[0]).toMatch(reason);
      expect((await vaultRead(`rks/data/${name}`)).status).toBe(404);
    });

    it('a private key is never echoed in an error', async () => {
      const body = { data: { certificate: chain.privateKey, private_key: chain.privateKey } };
      const res = await api().post(`/rks/v1/secret/${name}`).set('X-Vault-Token', token).send(body);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).not.toContain(chain.privateKey.split('\n')[1]);
    });
  });

  it('a shuffled chain is answered leaf first', async () => {
    const fqdn = `shuffled-${uniq()}.example.com`;
    const c = await chainFor([fqdn]);
    const body = { data: { certificate: c.intermediate.certPem + c.root.certPem + c.leaf.certPem, private_key: c.privateKey } };
    await api().post(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token).send(body).expect(201);
    const res = await api().get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token).expect(200);
    const pems = res.body.data.certificate.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
    expect(pems.map((p: string) => new X509Certificate(p).subject)).toEqual([`CN=${fqdn}`, 'CN=rks test intermediate', 'CN=rks test root']);
  });

  describe('names that are not DNS names are 400 before Vault is asked', () => {
    it.each(['*', 'a', 'config', 'x%2Fy.example.com', 'test*', 'a+b.example.com', '*.*.example.com', 'groups%2Fedge%2Fconfig'])(
      '%s',
      async (bad) => {
        for (const r of [
          api().get(`/rks/v1/secret/${bad}`).set('X-Vault-Token', token),
          api().post(`/rks/v1/secret/${bad}`).set('X-Vault-Token', token).send(secret()),
          api().put(`/rks/v1/secret/${bad}`).set('X-Vault-Token', token).send(secret()),
          api().delete(`/rks/v1/secret/${bad}`).set('X-Vault-Token', token),
          api().get(`/rks/v1/secret/${bad}/groups`).set('X-Vault-Token', token),
        ]) {
          const res = await r;
          expect(res.status).toBe(400);
          expect(res.body.errors[0]).toMatch(/invalid secret name/);
        }
      },
    );

    it('nothing landed on rks bookkeeping', async () => {
      const cfg = await vaultRead('rks/data/config');
      expect(cfg.body.data.data.initialized).toBe(true);
      expect(cfg.body.data.metadata.version).toBe(1);
    });
  });
});
