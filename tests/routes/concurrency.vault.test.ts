import request from 'supertest';
import { nodePolicy } from '../../src/vault/policies';
import { Harness, adminToken, groupCopies, harness, vaultRead } from '../support/harness';
import { createGroup, pushSecret, uniq } from '../support/rks';

/** Design §10: concurrent associate/dissociate on one group lose no update. */
describe('concurrent association', () => {
  const N = 50;
  let h: Harness;
  let second: Harness;
  let admin: string;
  const g = uniq('conc');
  const names = Array.from({ length: N }, (_, i) => `c${i}-${uniq('s')}.example.com`);

  beforeAll(async () => {
    h = harness();
    // A second app stands for a second rks instance: no shared lock, only Vault's check-and-set.
    second = harness();
    admin = await adminToken(h.app);
    await createGroup(h.app, admin, g);
    for (let i = 0; i < N; i += 10) await Promise.all(names.slice(i, i + 10).map((f) => pushSecret(h.app, admin, f)));
  }, 120_000);
  afterAll(() => {
    h.close();
    second.close();
  });

  const policy = async () => (await vaultRead(`sys/policies/acl/rks_node_${g}`)).body.data.policy as string;

  it(`${N} concurrent associations, split over two instances, all succeed and all are kept`, async () => {
    const results = await Promise.all(
      names.map((f, i) => request((i % 2 ? second : h).app).post(`/rks/v1/group/${g}/secrets/${f}`).set('X-Vault-Token', admin)),
    );
    expect(results.map((r) => r.status)).toEqual(names.map(() => 201));
    expect(await groupCopies(g)).toEqual([...names].sort());
    expect(await policy()).toBe(nodePolicy(g));
    for (const f of names) expect((await vaultRead(`rks/data/index/secret-groups/${f}`)).body.data.data.groups).toEqual([g]);
  }, 120_000);

  it(`${N} concurrent dissociations all succeed and leave nothing behind`, async () => {
    const results = await Promise.all(
      names.map((f, i) => request((i % 2 ? second : h).app).delete(`/rks/v1/group/${g}/secrets/${f}`).set('X-Vault-Token', admin)),
    );
    expect(results.map((r) => r.status)).toEqual(names.map(() => 204));
    expect(await groupCopies(g)).toEqual([]);
    for (const f of names) expect((await vaultRead(`rks/data/index/secret-groups/${f}`)).body.data.data.groups).toEqual([]);
    expect(await policy()).toBe(nodePolicy(g));
  }, 120_000);
});
