import request from 'supertest';
import { Harness, adminToken, harness } from '../support/harness';
import { createGroup, registerNode, uniq } from '../support/rks';
import { DAYS, chainFor } from '../support/pki';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The inventory and expiry rules against the run's real Vault. */
describe('inventory: /rks/v1/secrets, /rks/v1/groups, /rks/v1/secret/{fqdn}/info', () => {
  let h: Harness;
  let admin: string;
  const push = async (fqdn: string, lifetimeMs: number, ttl?: number) => {
    const c = await chainFor([fqdn], { notAfter: new Date(Date.now() + lifetimeMs) });
    const res = await request(h.app)
      .post(`/rks/v1/secret/${fqdn}`)
      .set('X-Vault-Token', admin)
      .send({ data: { certificate: c.certificate, private_key: c.privateKey, ...(ttl ? { meta: { ttl } } : {}) } });
    return { c, res };
  };
  beforeAll(async () => {
    h = harness();
    admin = await adminToken(h.app);
  });
  afterAll(() => h.close());

  it('lists with facts, filters on expiry and group, pages, and answers a single entry', async () => {
    const tag = uniq('inv');
    const day = `day.${tag}.example.com`;
    const sixty = `sixty.${tag}.example.com`;
    const pushedDay = await push(day, DAYS(1) - 60_000);
    expect(pushedDay.res.status).toBe(201);
    expect(pushedDay.res.body).toEqual({ warnings: [expect.stringMatching(/^the certificate expires within a day/)] });
    const pushedSixty = await push(sixty, DAYS(60));
    expect(pushedSixty.res.status).toBe(201);
    expect(pushedSixty.res.text).toBe('');
    const group = uniq('inv');
    await createGroup(h.app, admin, group);
    await request(h.app).post(`/rks/v1/group/${group}/secrets/${day}`).set('X-Vault-Token', admin).expect(201);

    const soon = await request(h.app).get('/rks/v1/secrets').query({ expiring_within: 7 * 86400, limit: 1000 }).set('X-Vault-Token', admin);
    expect(soon.status).toBe(200);
    const names = (soon.body.secrets as { name: string }[]).map((s) => s.name);
    expect(names).toContain(day);
    expect(names).not.toContain(sixty);

    const ofGroup = await request(h.app).get('/rks/v1/secrets').query({ group }).set('X-Vault-Token', admin);
    expect(ofGroup.body).toEqual({
      secrets: [
        {
          name: day,
          subject: `CN=${day}`,
          sans: [`DNS:${day}`],
          issuer: 'CN=rks test intermediate',
          notBefore: pushedDay.c.leaf.cert.notBefore.toISOString(),
          notAfter: pushedDay.c.leaf.cert.notAfter.toISOString(),
          keyType: 'EC P-256',
          sha256Fingerprint: expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/),
          chainLength: 3,
          groups: [group],
          ttl: 300,
          managed: false,
          expired: false,
        },
      ],
    });

    // Pages in name order, the cursor being the last name.
    const p1 = await request(h.app).get('/rks/v1/secrets').query({ limit: 1, after: `day.${tag}.example.cok` }).set('X-Vault-Token', admin);
    expect(p1.body.secrets.map((s: { name: string }) => s.name)).toEqual([day]);
    expect(p1.body.next).toBe(day);

    const info = await request(h.app).get(`/rks/v1/secret/${sixty}/info`).set('X-Vault-Token', admin);
    expect(info.status).toBe(200);
    expect(info.body).toMatchObject({ name: sixty, expired: false, groups: [] });
    expect(JSON.stringify(info.body)).not.toContain('PRIVATE KEY');

    for (const bad of [{ limit: 0 }, { limit: 'many' }, { expiring_within: -1 }, { group: 'a/b' }, { extra: 1 }]) {
      expect((await request(h.app).get('/rks/v1/secrets').query(bad).set('X-Vault-Token', admin)).status).toBe(400);
    }
    expect((await request(h.app).get('/rks/v1/secrets').query({ group: uniq('none') }).set('X-Vault-Token', admin)).status).toBe(404);
    expect((await request(h.app).get('/rks/v1/secrets')).status).toBe(403);
  });

  it("a listing held in memory is served to administrators only: a node's or a group's token gets 403 from Vault", async () => {
    const group = uniq('inv');
    const groupToken = await createGroup(h.app, admin, group);
    const { nodeToken } = await registerNode(h.app, groupToken, uniq('n'));
    expect((await request(h.app).get('/rks/v1/secrets').set('X-Vault-Token', admin)).status).toBe(200);
    for (const token of [nodeToken, groupToken, 'hvs.made-up']) {
      for (const query of [{}, { expiring_within: 86400 }, { group }]) {
        const res = await request(h.app).get('/rks/v1/secrets').query(query).set('X-Vault-Token', token);
        expect(res.status).toBe(403);
        expect(res.body.secrets).toBeUndefined();
      }
    }
  });

  it('a certificate that lapses after its push: nodes get 410, no new association, info says expired, the metric counts it', async () => {
    const tag = uniq('exp');
    const fqdn = `short.${tag}.example.com`;
    const group = uniq('exp');
    const groupToken = await createGroup(h.app, admin, group);
    const pushed = await push(fqdn, 3000, 60);
    expect(pushed.res.body.warnings[0]).toMatch(/within the secret's TTL \(60 s\)/);
    await request(h.app).post(`/rks/v1/group/${group}/secrets/${fqdn}`).set('X-Vault-Token', admin).expect(201);
    const { nodeToken } = await registerNode(h.app, groupToken, 'n1');
    expect((await request(h.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', nodeToken)).status).toBe(200);
    await sleep(3500);

    const read = await request(h.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', nodeToken);
    expect(read.status).toBe(410);
    expect(read.body).toEqual({ errors: [`the certificate of '${fqdn}' expired at ${pushed.c.leaf.cert.notAfter.toISOString()}`], code: 'certificate_expired' });
    const other = uniq('exp');
    await createGroup(h.app, admin, other);
    const assoc = await request(h.app).post(`/rks/v1/group/${other}/secrets/${fqdn}`).set('X-Vault-Token', admin);
    expect(assoc.status).toBe(409);
    expect(assoc.body.code).toBe('certificate_expired');
    expect((await request(h.app).get(`/rks/v1/secret/${fqdn}/info`).set('X-Vault-Token', admin)).body.expired).toBe(true);

    // /metrics needs no token: by default it names no certificate, only counts them.
    await h.services.expiryWatch.pass();
    const metrics = (await request(h.app).get('/metrics')).text;
    expect(metrics).not.toContain(fqdn);
    const named = harness({ expiryMetricLimit: 100_000 });
    try {
      await named.services.expiryWatch.pass();
      const text = (await request(named.app).get('/metrics')).text;
      expect(text).toContain(`rks_secret_expiry_timestamp_seconds{fqdn="${fqdn}"} ${Math.floor(pushed.c.leaf.cert.notAfter.getTime() / 1000)}`);
    } finally {
      named.close();
    }
    expect(Number(/rks_secrets_expiring\{within="expired"\} (\d+)/.exec(metrics)![1])).toBeGreaterThanOrEqual(1);
    expect(Number(/rks_secrets_expiring\{within="7d"\} (\d+)/.exec(metrics)![1])).toBeGreaterThanOrEqual(1);
  });

  it('lists groups with whether they verify nodes and how many secrets and nodes they have', async () => {
    const g = uniq('grp');
    const groupToken = await createGroup(h.app, admin, g);
    await registerNode(h.app, groupToken, 'a');
    await registerNode(h.app, groupToken, 'b');
    const all: { name: string }[] = [];
    for (let next: string | undefined = ''; next !== undefined; ) {
      const res: request.Response = await request(h.app).get('/rks/v1/groups').query({ limit: 1000, ...(next ? { after: next } : {}) }).set('X-Vault-Token', admin);
      expect(res.status).toBe(200);
      all.push(...res.body.groups);
      next = res.body.next;
    }
    expect(all).toContainEqual({ name: g, callback: false, secrets: 0, nodes: 2 });
  });
});
