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
 * The suites share one Vault and every rks instance renews what is due, so a name of this suite
 * may be taken by another's pass: what it checks is what Vault holds, once the claims settle.
 * This suite renews its own names only (never a pass with a clock ahead, which would take
 * others' names).
 */
async function until(ok: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
}

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
    // What this suite is about is growth, not HTTP-01 (tests/acme/ has it): no validation to miss under load.
    pebble = await startPebble({ httpPort: (port80.address() as AddressInfo).port, validitySeconds: 7200, alwaysValid: true });
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
    // Obtained when due (by this instance, or by another rks on this Vault that took one first).
    await mapLimited(acmeNames, 8, (n) => renew(n, Date.now()));
    await until(async () => (await listed({ renewal: 'pending' })).length === 0);
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
    // (A mark a state moved on from may still be there beside its own: dropped when a pass finds it.)
    expect(mine([...new Set(due.map((d) => d.fqdn))])).toEqual(mine([...rksNames, ...acmeNames]));
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
    expect((await request(h.app).get('/metrics')).text).toMatch(new RegExp(`rks_managed_secrets\\{issuer="rks-ca",state="failing"\\} (${failing.length}|[2-9]\\d|\\d{3,})`));

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

  it("keeps to an issuer's order budget: orders beyond it wait in a queue, each with its slot, and the operator is told how long it runs", async () => {
    const paced = `${prefix}-paced`;
    await request(h.app).post(`/rks/v1/acme/issuers/${paced}`).set('X-Vault-Token', admin).send({ directory: pebble.directory, caBundle: pebble.tlsCa, termsOfServiceAgreed: true, orderBudget: { orders: 5, windowSeconds: 3600 } }).expect(201);
    const names = Array.from({ length: 12 }, (_, i) => `${prefix}-paced-${i}.example.com`);
    for (const n of names) await request(h.app).post(`/rks/v1/secret/${n}/managed`).set('X-Vault-Token', admin).send({ issuer: paced }).expect(202);
    await mapLimited(names, 4, (n) => renew(n, Date.now()));
    let infos: Awaited<ReturnType<typeof info>>[] = [];
    await until(async () => {
      infos = await mapLimited(names, 4, info);
      return infos.every((i) => !i.pending || i.renewal.status === 'queued');
    });
    await mapLimited(names, 4, (n) => renew(n, Date.now()));
    infos = await mapLimited(names, 4, info);
    // Five orders in the hour, whichever instances placed them.
    expect(infos.filter((i) => !i.pending).length).toBe(5);
    const queued = infos.filter((i) => i.renewal.status === 'queued');
    expect(queued.length).toBe(7);
    // One slot each, an interval (an hour / 5) apart, from when the window frees.
    const slots = queued.map((i) => Date.parse(i.renewal.nextAttempt) / 1000).sort((a, b) => a - b);
    expect(slots[0]).toBeGreaterThan(Date.now() / 1000 + 3000);
    for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBe(720);
    expect(queued.every((i) => i.renewal.failures === 0 && !i.renewal.lastError)).toBe(true);
    const issuer = (await request(h.app).get(`/rks/v1/acme/issuers/${paced}`).set('X-Vault-Token', admin).expect(200)).body;
    expect(issuer).toMatchObject({ orderBudget: { orders: 5, windowSeconds: 3600 }, queue: { placedInWindow: 5, queued: 7, pending: 0, failing: 0, queueThrough: new Date(slots[6]! * 1000).toISOString() } });
    expect(await listed({ renewal: 'queued' })).toEqual(mine(queued.map((i) => i.name)));
    await h.services.expiryWatch.pass();
    const metrics = (await request(h.app).get('/metrics')).text;
    expect(metrics).toContain(`rks_managed_secrets{issuer="${paced}",state="queued"} 7`);
    expect(metrics).toContain(`rks_acme_queue_through_timestamp_seconds{issuer="${paced}"} ${slots[6]}`);
    expect(metrics).toMatch(new RegExp(`rks_acme_next_slot_timestamp_seconds\\{issuer="${paced}"\\} ${slots[0]}`));
    // A name created now queues behind them, and says so at once.
    const late = `${prefix}-paced-late.example.com`;
    const created = (await request(h.app).post(`/rks/v1/secret/${late}/managed`).set('X-Vault-Token', admin).send({ issuer: paced }).expect(202)).body;
    expect(created.renewal).toMatchObject({ status: 'queued', nextAttempt: new Date((slots[6]! + 720) * 1000).toISOString() });
    // Its slot come, the first queued name is ordered (the window has moved on).
    // The CA raised the account's limit: a larger budget lets the next queued order go now.
    const raised = await request(h.app).put(`/rks/v1/acme/issuers/${paced}/budget`).set('X-Vault-Token', admin).send({ orders: 6, windowSeconds: 3600 }).expect(200);
    expect(raised.body.orderBudget).toEqual({ orders: 6, windowSeconds: 3600 });
    const after = (await request(h.app).get(`/rks/v1/acme/issuers/${paced}`).set('X-Vault-Token', admin).expect(200)).body;
    expect(Date.parse(after.queue.nextSlot)).toBeLessThanOrEqual(Date.now() + 1000);
    await request(h.app).put(`/rks/v1/acme/issuers/${paced}/budget`).set('X-Vault-Token', admin).send({ orders: 0, windowSeconds: 3600 }).expect(400);
    await request(h.app).put(`/rks/v1/acme/issuers/nope-${prefix}/budget`).set('X-Vault-Token', admin).send({ orders: 5, windowSeconds: 3600 }).expect(404);
    const first = queued.find((i) => Date.parse(i.renewal.nextAttempt) / 1000 === slots[0])!.name;
    await renew(first, slots[0]! * 1000 + 1000);
    expect((await info(first)).pending).toBeUndefined();
  }, 120_000);
});
