import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { mapLimited } from '../../src/concurrency';
import { Harness, adminToken, harness, vaultRead, vaultWrite } from '../support/harness';
import { TestPebble, startPebble } from '../support/pebble';
import { createGroup, registerNode, uniq } from '../support/rks';

type Renewing = { renew(t: string, f: string, at: number): Promise<void> };

/**
 * Several hundred managed secrets through the API, on the run's Vault, which refuses arrays of
 * more than 100 elements and strings of more than 16 KiB: nothing rks keeps for them may grow
 * with their number. Built, renewed, some failing, one rolled back, some deleted: every call
 * succeeds, and what Vault holds stays small.
 */
describe('managed secrets by the hundred', () => {
  let h: Harness;
  let admin: string;
  let pebble: TestPebble;
  let port80: http.Server;
  let nodeToken = '';
  const prefix = uniq('s');
  const rksNames = Array.from({ length: 300 }, (_, i) => `${prefix}-${i}.example.com`);
  const acmeNames = Array.from({ length: 60 }, (_, i) => `${prefix}-acme-${i}.example.com`);
  const group = uniq('s');
  const renew = (fqdn: string, at: number) => h.services.session.run((t) => (h.services.managed as unknown as Renewing).renew(t, fqdn, Math.floor(at / 1000)));
  const info = async (fqdn: string) => (await request(h.app).get(`/rks/v1/secret/${fqdn}/info`).set('X-Vault-Token', admin).expect(200)).body;
  const mine = (names: string[]) => names.filter((n) => n.startsWith(`${prefix}-`)).sort();
  const listed = async (query: Record<string, string>) => {
    const out: string[] = [];
    let after: string | undefined;
    do {
      const page = (await request(h.app).get('/rks/v1/secrets').query({ ...query, limit: '1000', ...(after ? { after } : {}) }).set('X-Vault-Token', admin).expect(200)).body;
      out.push(...page.secrets.map((s: { name: string }) => s.name));
      after = page.next;
    } while (after);
    return mine(out);
  };

  beforeAll(async () => {
    port80 = http.createServer((req, res) => {
      const tok = /acme-challenge\/(.+)$/.exec(req.url ?? '')?.[1] ?? '';
      void request(h.app).get(`/rks/v1/acme/http-01/${tok}`).set('X-Vault-Token', nodeToken).then((r) => (r.status === 200 ? res.writeHead(200).end(r.body.keyAuthorization) : res.writeHead(404).end()));
    });
    await new Promise<void>((r) => port80.listen(0, '127.0.0.1', r));
    pebble = await startPebble({ httpPort: (port80.address() as AddressInfo).port, validitySeconds: 7200 });
    h = harness();
    admin = await adminToken(h.app);
    await request(h.app).post(`/rks/v1/acme/issuers/${prefix}`).set('X-Vault-Token', admin).send({ directory: pebble.directory, caBundle: pebble.tlsCa, termsOfServiceAgreed: true }).expect(201);
    const groupToken = await createGroup(h.app, admin, group);
    ({ nodeToken } = await registerNode(h.app, groupToken, 'n1'));
  }, 120_000);
  afterAll(async () => {
    h?.close();
    port80?.close();
    await pebble?.stop();
  });

  it('builds 300 from rks\'s CA and 60 from an ACME CA, associates them, renews them all: every call succeeds', async () => {
    const created = await mapLimited(rksNames, 8, async (n) => (await request(h.app).post(`/rks/v1/secret/${n}/managed`).set('X-Vault-Token', admin).send({ lifetime: 3600 })).status);
    expect(created.filter((s) => s !== 201)).toEqual([]);
    const pending = await mapLimited(acmeNames, 8, async (n) => (await request(h.app).post(`/rks/v1/secret/${n}/managed`).set('X-Vault-Token', admin).send({ issuer: prefix })).status);
    expect(pending.filter((s) => s !== 202)).toEqual([]);
    // Obtained by the renewal pass, as the background job runs it.
    await h.services.managed.renewDue();
    expect(await listed({ renewal: 'pending' })).toEqual([]);
    expect((await info(acmeNames[0]!)).issuer).toMatch(/Pebble/);

    const associated = [...rksNames.slice(0, 150), ...acmeNames];
    const statuses = await mapLimited(associated, 8, async (n) => (await request(h.app).post(`/rks/v1/group/${group}/secrets/${n}`).set('X-Vault-Token', admin)).status);
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    const nodeList = (await request(h.app).get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).expect(200)).body.secrets as string[];
    expect(mine(nodeList)).toEqual(mine(associated));

    // Everything due in two hours, found by the schedule's index; each renewed once.
    const later = Date.now() + 7200_000;
    const due = await h.services.session.run((t) => h.services.managed.schedule.due(t, Math.floor(later / 1000)));
    expect(mine(due.map((d) => d.fqdn))).toEqual(mine([...rksNames, ...acmeNames]));
    const before = (await request(h.app).get(`/rks/v1/secret/${rksNames[0]}`).set('X-Vault-Token', nodeToken).expect(200)).body.data.certificate;
    await mapLimited([...rksNames, ...acmeNames], 8, (n) => renew(n, later));
    const versions = await mapLimited([...rksNames, ...acmeNames], 8, async (n) => (await vaultRead(`rks/metadata/managed/secrets/${n}`)).body.data.current_version);
    expect(versions.filter((v) => v !== 2)).toEqual([]);
    const after = (await request(h.app).get(`/rks/v1/secret/${rksNames[0]}`).set('X-Vault-Token', nodeToken).expect(200)).body.data.certificate;
    expect(after).not.toBe(before);
    expect(await listed({ renewal: 'failing' })).toEqual([]);
    expect((await listed({})).length).toBe(360);

    // What rks keeps does not grow with them: no policy names a managed secret, no entry lists them all.
    expect((await vaultRead('sys/policies/acl/rks_managed')).status).toBe(404);
    expect((await vaultRead('rks/data/index/managed')).status).toBe(404);
    expect(JSON.stringify((await vaultRead(`rks/data/managed/state/${rksNames[0]}`)).body.data.data).length).toBeLessThan(300);
  }, 300_000);

  it('some fail and are listed first as failing; one rolls back; some are deleted: their traces go', async () => {
    const later = Date.now() + 4 * 3600_000;
    const failing = rksNames.slice(280);
    for (const n of failing) {
      const role = `rks-pki/roles/managed-${createHash('sha256').update(n).digest('hex').slice(0, 24)}`;
      expect((await vaultWrite(role, {}, 'DELETE')).status).toBe(204);
    }
    await mapLimited(rksNames.slice(250), 8, (n) => renew(n, later));
    expect(await listed({ renewal: 'failing' })).toEqual(mine(failing));
    expect((await info(failing[0]!)).renewal).toMatchObject({ status: 'failing', failures: 1 });
    await h.services.expiryWatch.pass();
    expect((await request(h.app).get('/metrics')).text).toMatch(new RegExp(`rks_managed_secrets\\{state="failing"\\} (${failing.length}|[2-9]\\d|\\d{3,})`));

    const back = rksNames[10]!;
    const previous = (await vaultRead(`rks/data/managed/secrets/${back}?version=1`)).body.data.data.certificate;
    await request(h.app).post(`/rks/v1/secret/${back}/rollback`).set('X-Vault-Token', admin).expect(200);
    expect((await request(h.app).get(`/rks/v1/secret/${back}`).set('X-Vault-Token', nodeToken).expect(200)).body.data.certificate).toBe(previous);
    expect((await info(back)).renewal.status).toBe('scheduled');

    const gone = [...rksNames.slice(100, 160), ...acmeNames.slice(0, 10)];
    for (const n of gone.filter((x) => rksNames.indexOf(x) < 150 || acmeNames.includes(x))) {
      await request(h.app).delete(`/rks/v1/group/${group}/secrets/${n}`).set('X-Vault-Token', admin).expect(204);
    }
    const deleted = await mapLimited(gone, 8, async (n) => (await request(h.app).delete(`/rks/v1/secret/${n}`).set('X-Vault-Token', admin)).status);
    expect(deleted.filter((s) => s !== 204)).toEqual([]);
    for (const n of gone.slice(0, 5)) {
      for (const p of [`rks/data/${n}`, `rks/data/managed/secrets/${n}`, `rks/data/managed/state/${n}`]) expect([p, (await vaultRead(p)).status]).toEqual([p, 404]);
    }
    const due = await h.services.session.run((t) => h.services.managed.schedule.due(t, Math.floor((Date.now() + 30 * 86400_000) / 1000)));
    const left = new Set(due.map((d) => d.fqdn));
    expect(gone.filter((n) => left.has(n))).toEqual([]);
    expect((await listed({})).length).toBe(360 - gone.length);
    const nodeList = (await request(h.app).get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).expect(200)).body.secrets as string[];
    expect(mine(nodeList)).toEqual(mine([...rksNames.slice(0, 100), ...acmeNames.slice(10)]));
  }, 300_000);
});
