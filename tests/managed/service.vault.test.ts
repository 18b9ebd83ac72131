import { createHash } from 'node:crypto';
import request from 'supertest';
import { Harness, adminToken, harness, vaultRead, vaultWrite } from '../support/harness';
import { createGroup, registerNode, uniq, vaultAs } from '../support/rks';
import { chainFor } from '../support/pki';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Managed secrets from rks's CA, against the run's real Vault, with two rks instances renewing. */
describe('managed secrets', () => {
  let a: Harness;
  let b: Harness;
  let admin: string;
  beforeAll(async () => {
    a = harness();
    b = harness();
    admin = await adminToken(a.app);
  });
  afterAll(() => {
    a.close();
    b.close();
  });

  const create = (fqdn: string, body: Record<string, unknown>) =>
    request(a.app).post(`/rks/v1/secret/${fqdn}/managed`).set('X-Vault-Token', admin).send(body);
  /** Versions of a managed secret's certificate and key (its stub at `rks/data/<fqdn>` is the administrator's). */
  const versions = async (fqdn: string) => (await vaultRead(`rks/metadata/managed/secrets/${fqdn}`)).body.data.current_version as number;
  const state = async (fqdn: string) => (await vaultRead(`rks/data/managed/state/${fqdn}`)).body?.data?.data;
  const marks = async () => {
    const hours = ((await vaultRead('rks/metadata/managed/due/?list=true')).body?.data?.keys ?? []) as string[];
    const out: string[] = [];
    for (const h of hours) out.push(...(((await vaultRead(`rks/metadata/managed/due/${h}?list=true`)).body?.data?.keys ?? []) as string[]));
    return out;
  };

  it('issues the certificate from the rks CA for the names asked, with a key made by rks; refuses what cannot work', async () => {
    const fqdn = `${uniq('m')}.example.com`;
    const res = await create(fqdn, { sans: [`www.${fqdn}`], keyType: 'rsa-3072', lifetime: 3600 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: fqdn,
      managed: true,
      keyType: 'RSA 3072',
      sans: [`DNS:${fqdn}`, `DNS:www.${fqdn}`],
      issuer: 'CN=rks CA',
      renewal: { issuer: 'rks-ca', lifetime: 3600, renewBefore: 1200, failures: 0 },
    });
    const lifetime = Date.parse(res.body.notAfter) - Date.parse(res.body.notBefore);
    expect(lifetime).toBeGreaterThan(3500_000);
    expect(lifetime).toBeLessThanOrEqual(3660_000);
    expect(Date.parse(res.body.renewal.nextAttempt)).toBe(Date.parse(res.body.notAfter) - 1200_000);

    // The first certificate counts as one obtained (the metric's help says so).
    expect((await request(a.app).get('/metrics')).text).toMatch(/rks_managed_renewals_total\{issuer="rks-ca",result="renewed"\} [1-9]/);
    expect((await create(fqdn, {})).status).toBe(409);
    expect((await create(`${uniq('m')}.example.com`, { lifetime: 60, renewBefore: 60 })).status).toBe(400);
    // Names rks stores but no CA signs: a 400 with the reason, and nothing written (found by fuzzing: it was a 500).
    for (const [name, sans] of [['*.Um0VFUuhIU_.2j8x0eQ', []], [`${uniq('m')}.example.com`, ['-x.example.com']], [`${uniq('m')}.example.com`, ['x-.example.com']]] as const) {
      const refused = await create(name, { sans });
      expect([name, refused.status, refused.body.code]).toEqual([name, 400, 'invalid_request']);
      expect(refused.body.errors[0]).toMatch(/a CA signs host names only/);
      expect((await vaultRead(`rks/data/${name.toLowerCase()}`)).status).toBe(404);
    }
    expect((await vaultRead('rks/data/managed/state/*.um0vfuuhiu_.2j8x0eq')).status).toBe(404);
    // What rks keeps: the stub (what was asked), the certificate and key apart, a state and its one mark.
    expect((await vaultRead(`rks/data/${fqdn}`)).body.data.data).toEqual({ managed: expect.objectContaining({ issuer: 'rks-ca', lifetime: 3600 }) });
    expect((await vaultRead(`rks/data/managed/secrets/${fqdn}`)).body.data.data).toMatchObject({ certificate: expect.stringContaining('BEGIN CERTIFICATE'), private_key: expect.any(String) });
    const s = await state(fqdn);
    expect(s).toMatchObject({ failures: 0, renewAt: Math.floor(Date.parse(res.body.notAfter) / 1000) - 1200 });
    expect((await marks()).filter((k) => k.endsWith(`-${fqdn}`))).toEqual([`${s.renewAt}-${fqdn}`]);
    expect((await create(`${uniq('m')}.example.com`, { keyType: 'dsa' })).status).toBe(400);
    expect((await create(`${uniq('m')}.example.com`, { lifetime: 5 })).status).toBe(400);
  });

  it('two rks instances renew it before it expires, exactly once each time; nodes read each new certificate; rollback puts the previous one back', async () => {
    const fqdn = `${uniq('r')}.example.com`;
    // Renewed 12 s after each issue (40 s lifetime, 28 s before the end).
    const created = await create(fqdn, { lifetime: 40, renewBefore: 28, ttl: 5 });
    expect(created.status).toBe(201);
    const g = uniq('m');
    const groupToken = await createGroup(a.app, admin, g);
    await request(a.app).post(`/rks/v1/group/${g}/secrets/${fqdn}`).set('X-Vault-Token', admin).expect(201);
    const { nodeToken } = await registerNode(a.app, groupToken, 'n1');
    const read = async () => (await request(b.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', nodeToken)).body.data;
    const first = await read();
    expect(first.meta.ttl).toBe(5);

    // Both instances look every 300 ms, at the same moments.
    let running = true;
    const loop = (async () => {
      while (running) {
        await Promise.all([a.services.managed.renewDue(), b.services.managed.renewDue()]);
        await sleep(300);
      }
    })();
    try {
      const started = Date.now();
      while ((await versions(fqdn)) < 2 && Date.now() - started < 20_000) await sleep(200);
      expect(await versions(fqdn)).toBe(2);
      const second = await read();
      expect(second.certificate).not.toBe(first.certificate);
      expect(second.private_key).not.toBe(first.private_key);
      while ((await versions(fqdn)) < 3 && Date.now() - started < 35_000) await sleep(200);
      expect(await versions(fqdn)).toBe(3);
      await sleep(2000);
      expect(await versions(fqdn)).toBe(3);
    } finally {
      running = false;
      await loop;
    }
    const info = (await request(a.app).get(`/rks/v1/secret/${fqdn}/info`).set('X-Vault-Token', admin)).body;
    expect(info.renewal.lastError).toBeUndefined();
    expect(info.renewal).toMatchObject({ failures: 0, lastAttempt: expect.any(String) });

    const current = await read();
    const previous = (await vaultRead(`rks/data/managed/secrets/${fqdn}?version=2`)).body.data.data;
    const rolled = await request(a.app).post(`/rks/v1/secret/${fqdn}/rollback`).set('X-Vault-Token', admin);
    expect(rolled.status).toBe(200);
    expect((await read()).certificate).toBe(previous.certificate);
    expect((await read()).certificate).not.toBe(current.certificate);
    expect(await versions(fqdn)).toBe(4);
    // Rolled back, it is renewed again when due, to what was asked (found by review: a rollback once stopped its renewals).
    const rolledInfo = (await request(a.app).get(`/rks/v1/secret/${fqdn}/info`).set('X-Vault-Token', admin)).body.renewal;
    expect(rolledInfo).toMatchObject({ failures: 0 });
    expect(['scheduled', 'due']).toContain(rolledInfo.status);
    await a.services.session.run((t) => (a.services.managed as unknown as { renew(t: string, f: string, at: number): Promise<void> }).renew(t, fqdn, Math.floor(Date.now() / 1000) + 3600));
    expect(await versions(fqdn)).toBe(5);
    expect((await vaultRead(`rks/data/managed/state/${fqdn}`)).body.data.data).toMatchObject({ failures: 0 });
  }, 60_000);

  it('rks\'s own identity may write the managed secrets and their copies, and no other secret, copy or stub', async () => {
    const managed = `${uniq('w')}.example.com`;
    const pushed = `${uniq('p')}.example.com`;
    expect((await create(managed, {})).status).toBe(201);
    const c = await chainFor([pushed]);
    await request(a.app).post(`/rks/v1/secret/${pushed}`).set('X-Vault-Token', admin).send({ data: { certificate: c.certificate, private_key: c.privateKey } }).expect(201);
    const g = uniq('w');
    await createGroup(a.app, admin, g);
    for (const n of [managed, pushed]) await request(a.app).post(`/rks/v1/group/${g}/secrets/${n}`).set('X-Vault-Token', admin).expect(201);
    await a.services.session.run(async (service) => {
      const own = await vaultAs(service, 'GET', `rks/data/managed/secrets/${managed}`);
      expect(own.status).toBe(200);
      expect((await vaultAs(service, 'GET', `rks/data/groups/${g}/managed/${managed}`)).status).toBe(200);
      expect((await vaultAs(service, 'GET', `rks/data/${pushed}`)).status).toBe(403);
      expect((await vaultAs(service, 'GET', `rks/data/${managed}`)).status).toBe(403);
      for (const path of [`rks/data/${pushed}`, `rks/data/${managed}`, `rks/data/groups/${g}/secrets/${pushed}`, `rks/data/groups/${g}/secrets/${managed}`, `rks/data/groups/${g}/managed/${pushed}`]) {
        expect([path, (await vaultAs(service, 'POST', path, { data: { certificate: 'x', private_key: 'y' } })).status]).toEqual([path, 403]);
      }
      expect((await vaultAs(service, 'POST', 'rks-pki/sign/server', {})).status).not.toBe(403);
    });
    // What rks's identity holds does not grow with the managed secrets: no policy names one.
    expect((await vaultRead('sys/policies/acl/rks_managed')).status).toBe(404);

    // What it may write does not decide what is ordered, nor what is managed: a spec it puts in a
    // certificate's record, or a state and a mark it makes for a pushed secret, change nothing.
    const due = Math.floor(Date.now() / 1000) - 5;
    await a.services.session.run(async (service) => {
      const record = (await vaultAs(service, 'GET', `rks/data/managed/secrets/${managed}`)).body.data.data;
      expect((await vaultAs(service, 'POST', `rks/data/managed/secrets/${managed}`, { data: { ...record, managed: { ...record.managed, sans: [managed, 'evil.example.net'] } } })).status).toBe(200);
      expect((await vaultAs(service, 'POST', `rks/data/managed/spec/${managed}`, { data: { spec: { ...record.managed, sans: ['evil.example.net'] } } })).status).toBe(403);
      expect((await vaultAs(service, 'POST', `rks/data/managed/state/${pushed}`, { data: { renewAt: due, failures: 0, pending: true } })).status).toBe(200);
      expect((await vaultAs(service, 'POST', `rks/data/managed/due/${Math.floor(due / 3600)}/${due}-${pushed}`, { data: {} })).status).toBe(200);
    });
    type Renewing = { renew(t: string, f: string, at: number): Promise<void> };
    for (const n of [managed, pushed]) await a.services.session.run((t) => (a.services.managed as unknown as Renewing).renew(t, n, Math.floor(Date.now() / 1000) + 86400 * 2));
    const renewed = (await request(a.app).get(`/rks/v1/secret/${managed}/info`).set('X-Vault-Token', admin)).body;
    expect(renewed.sans).toEqual([`DNS:${managed}`]);
    const plain = (await request(a.app).get(`/rks/v1/secret/${pushed}/info`).set('X-Vault-Token', admin)).body;
    expect(plain).toMatchObject({ managed: false, notAfter: expect.any(String) });
    expect((await vaultRead(`rks/data/managed/state/${pushed}`)).status).toBe(404);
    expect((await vaultRead(`rks/data/managed/secrets/${pushed}`)).status).toBe(404);
  });

  it('a managed secret is renewing or visibly failing, whatever the sequence of calls: push over it, another managed secret, rollback', async () => {
    const m = `${uniq('rb')}.example.com`;
    expect((await create(m, { lifetime: 3600 })).status).toBe(201);
    const c = await chainFor([m]);
    await request(a.app).put(`/rks/v1/secret/${m}`).set('X-Vault-Token', admin).send({ data: { certificate: c.certificate, private_key: c.privateKey } }).expect(200);
    expect((await create(`${uniq('rb')}.example.com`, {})).status).toBe(201);
    await request(a.app).post(`/rks/v1/secret/${m}/rollback`).set('X-Vault-Token', admin).expect(200);
    expect(await state(m)).toMatchObject({ failures: 0 });
    // As the renewal pass does when it is due (an hour from now; only this secret: others on
    // this Vault belong to other tests): renewed, by rks's own identity.
    const renew = (at: number) => a.services.session.run((t) => (a.services.managed as unknown as { renew(t: string, f: string, at: number): Promise<void> }).renew(t, m, Math.floor(at / 1000)));
    await renew(Date.now() + 3600_000);
    expect(await versions(m)).toBe(2);
    // Counted by the instance that renewed it (instances of other test files on this Vault
    // renew what is due too, so only this one's own count says anything here).
    expect((await request(a.app).get('/metrics')).text).toMatch(/rks_managed_renewals_total\{issuer="rks-ca",result="renewed"\} [1-9]/);

    // A renewal that fails for any reason (here: its PKI role is gone, so Vault signs nothing for it) says so.
    const role = `rks-pki/roles/managed-${createHash('sha256').update(m).digest('hex').slice(0, 24)}`;
    expect((await vaultWrite(role, {}, 'DELETE')).status).toBe(204);
    await renew(Date.now() + 7200_000);
    const info = (await request(a.app).get(`/rks/v1/secret/${m}/info`).set('X-Vault-Token', admin)).body;
    expect(info.renewal).toMatchObject({ failures: 1, status: 'failing', lastError: expect.stringMatching(/role|managed-/) });
    const failing = (await request(a.app).get('/rks/v1/secrets?renewal=failing&limit=1000').set('X-Vault-Token', admin)).body.secrets.map((x: { name: string }) => x.name);
    expect(failing).toContain(m);
    expect((await request(a.app).get('/metrics')).text).toMatch(/rks_managed_renewals_total\{issuer="rks-ca",result="failed"\} [1-9]/);
    expect(await versions(m)).toBe(2);
  }, 30_000);

  it('rolled back to the managed secret while the pushed copy cannot be removed: nodes get the managed key, never the pushed one it replaced', async () => {
    const m = `${uniq('rbm')}.example.com`;
    expect((await create(m, { lifetime: 3600 })).status).toBe(201);
    const g = uniq('rbm');
    const groupToken = await createGroup(a.app, admin, g);
    await request(a.app).post(`/rks/v1/group/${g}/secrets/${m}`).set('X-Vault-Token', admin).expect(201);
    const { nodeToken } = await registerNode(a.app, groupToken, 'n1');
    const served = async () => (await request(a.app).get(`/rks/v1/secret/${m}`).set('X-Vault-Token', nodeToken).expect(200)).body.data.certificate as string;
    const managedCert = await served();
    // A bad key pushed over it, then undone.
    const bad = await chainFor([m]);
    await request(a.app).put(`/rks/v1/secret/${m}`).set('X-Vault-Token', admin).send({ data: { certificate: bad.certificate, private_key: bad.privateKey } }).expect(200);
    expect(await served()).toBe(bad.certificate);
    // Vault refuses the removal of the pushed copy once, as it may for a moment.
    const vault = a.services.vault as unknown as { call: (method: string, path: string, ...rest: unknown[]) => Promise<unknown> };
    const call = vault.call.bind(vault);
    let refused = 0;
    vault.call = async (method, path, ...rest) => {
      if (method === 'DELETE' && path === `rks/metadata/groups/${g}/secrets/${m}` && refused++ === 0) throw new Error('Vault is briefly unavailable');
      return call(method, path, ...rest);
    };
    try {
      const rolled = await request(a.app).post(`/rks/v1/secret/${m}/rollback`).set('X-Vault-Token', admin);
      expect(rolled.status).toBeGreaterThanOrEqual(500);
      expect(refused).toBe(1);
    } finally {
      vault.call = call;
    }
    // The copy left behind holds what the secret is now: the bad key is served no more.
    expect(await served()).toBe(managedCert);
    expect((await vaultRead(`rks/data/groups/${g}/secrets/${m}`)).body.data.data.moved).toBe(true);
    // Nor does it hide the renewals that follow, which reach only the managed copy.
    const { data, metadata } = (await vaultRead(`rks/data/managed/state/${m}`)).body.data;
    expect((await vaultWrite(`rks/data/managed/state/${m}`, { data: { ...data, renewAt: Math.floor(Date.now() / 1000) - 1 }, options: { cas: metadata.version } })).status).toBe(200);
    await a.services.session.run((t) => (a.services.managed as unknown as { renew(t: string, f: string, at: number): Promise<void> }).renew(t, m, Math.floor(Date.now() / 1000)));
    const renewed = (await vaultRead(`rks/data/managed/secrets/${m}`)).body.data.data.certificate as string;
    expect(renewed).not.toBe(managedCert);
    expect(await served()).toBe(renewed);
    // Recorded for the group's edges by rks's own identity: the renewal is in the serial's log.
    const serial = (await vaultRead(`rks/data/groups/${g}/serial`)).body.data;
    expect(serial.data.log.split('\n')).toContain(`${serial.metadata.version} k ${m}`);
  }, 30_000);

  it("a renewal whose copies cannot be written orders nothing more: the next attempt updates the groups' copies alone", async () => {
    const m = `${uniq('cb')}.example.com`;
    expect((await create(m, { lifetime: 3600 })).status).toBe(201);
    const g = uniq('cb');
    const groupToken = await createGroup(a.app, admin, g);
    await request(a.app).post(`/rks/v1/group/${g}/secrets/${m}`).set('X-Vault-Token', admin).expect(201);
    const { nodeToken } = await registerNode(a.app, groupToken, 'n1');
    const served = async () => (await request(a.app).get(`/rks/v1/secret/${m}`).set('X-Vault-Token', nodeToken).expect(200)).body.data.certificate as string;
    const stored = async () => (await vaultRead(`rks/data/managed/secrets/${m}`)).body.data.data.certificate as string;
    const renew = (at: number) => a.services.session.run((t) => (a.services.managed as unknown as { renew(t: string, f: string, at: number): Promise<void> }).renew(t, m, Math.floor(at / 1000)));
    // Due now, as far as its state says (the certificate itself is not).
    const due = async () => {
      const { data, metadata } = (await vaultRead(`rks/data/managed/state/${m}`)).body.data;
      data.renewAt = Math.floor(Date.now() / 1000) - 1;
      expect((await vaultWrite(`rks/data/managed/state/${m}`, { data, options: { cas: metadata.version } })).status).toBe(200);
    };

    // The group's copy cannot be written for now (as when Vault refuses it).
    const copies = (a.services.managed as unknown as { copies: { fanOut: (...args: unknown[]) => Promise<void> } }).copies;
    const fanOut = copies.fanOut;
    copies.fanOut = async () => {
      throw new Error('permission denied');
    };
    const before = await served();
    await due();
    await renew(Date.now());
    expect(await versions(m)).toBe(2);
    expect(await stored()).not.toBe(before);
    expect(await served()).toBe(before);
    expect(await state(m)).toMatchObject({ copiesBehind: true, failures: 1, lastError: expect.stringMatching(/copies were not updated.*permission denied/) });

    // Allowed again: the next attempt copies what is stored, and orders no new certificate.
    copies.fanOut = fanOut;
    const renewed = await stored();
    await due();
    await renew(Date.now());
    expect(await versions(m)).toBe(2);
    expect(await served()).toBe(renewed);
    const after = await state(m);
    expect(after).toMatchObject({ failures: 0 });
    expect(after.copiesBehind).toBeUndefined();
    expect(after.lastError).toBeUndefined();
    expect(after.renewAt * 1000).toBeGreaterThan(Date.now() + 60_000);
    expect((await request(a.app).get('/metrics')).text).toMatch(/rks_managed_renewals_total\{issuer="rks-ca",result="copies_failed"\} 1/);
  }, 30_000);

  it('an attempt that outlives its claim records nothing: the instance that took over keeps its certificate and its schedule', async () => {
    const m = `${uniq('cl')}.example.com`;
    expect((await create(m, { lifetime: 3600 })).status).toBe(201);
    type Renewing = { renew(t: string, f: string, at: number): Promise<void>; issue(...args: unknown[]): Promise<unknown> };
    const slow = a.services.managed as unknown as Renewing;
    const fast = b.services.managed as unknown as Renewing;
    // Instance a claims it and its CA is slow; its claim runs out, and b renews meanwhile.
    const issue = slow.issue.bind(slow);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    slow.issue = async (...args: unknown[]) => {
      const out = await issue(...args);
      await gate;
      return out;
    };
    const due = Math.floor(Date.now() / 1000) + 3600;
    const first = a.services.session.run((t) => slow.renew(t, m, due));
    await sleep(500);
    await b.services.session.run((t) => fast.renew(t, m, due + 301));
    const afterB = await state(m);
    const certB = (await vaultRead(`rks/data/managed/secrets/${m}`)).body.data.data.certificate;
    release();
    await first;
    slow.issue = issue;
    expect(await state(m)).toEqual(afterB);
    expect(afterB).toMatchObject({ failures: 0 });
    expect(afterB.lastError).toBeUndefined();
    expect((await vaultRead(`rks/data/managed/secrets/${m}`)).body.data.data.certificate).toBe(certB);
    expect(await versions(m)).toBe(2);
  }, 30_000);

  it('a push over a managed secret makes it an ordinary one: rks stops renewing it', async () => {
    const fqdn = `${uniq('o')}.example.com`;
    expect((await create(fqdn, { lifetime: 40, renewBefore: 30 })).status).toBe(201);
    const c = await chainFor([fqdn]);
    await request(a.app).put(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', admin).send({ data: { certificate: c.certificate, private_key: c.privateKey } }).expect(200);
    const info = (await request(a.app).get(`/rks/v1/secret/${fqdn}/info`).set('X-Vault-Token', admin)).body;
    expect(info.managed).toBe(false);
    expect((await vaultRead(`rks/data/managed/state/${fqdn}`)).status).toBe(404);
    expect((await marks()).filter((k) => k.endsWith(`-${fqdn}`))).toEqual([]);
    // Past the time it would have been renewed.
    await sleep(10_500);
    await a.services.managed.renewDue();
    expect(await versions(fqdn)).toBe(1);
    expect((await vaultRead(`rks/metadata/${fqdn}`)).body.data.current_version).toBe(2);
  }, 25_000);
});
