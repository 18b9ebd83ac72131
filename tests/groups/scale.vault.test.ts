import request from 'supertest';
import { mapLimited } from '../../src/concurrency';
import { nodePolicy } from '../../src/vault/policies';
import { Harness, adminToken, groupCopies, harness, vaultRead } from '../support/harness';
import { chainFor } from '../support/pki';
import { createGroup, registerNode, uniq } from '../support/rks';
import { JSON_LIMITS } from '../support/vault';

/**
 * A group several times larger than anything Vault accepts here as one array (the tests' Vault
 * refuses JSON arrays over JSON_LIMITS.arrayElements elements): every operation on it must
 * still work, because no request rks makes grows with the group.
 */
const N = 3 * JSON_LIMITS.arrayElements;

describe(`a group of ${N} secrets on a Vault that refuses arrays over ${JSON_LIMITS.arrayElements}`, () => {
  let h: Harness;
  let admin: string;
  let nodeToken: string;
  const g = uniq('scale');
  const domain = `${g}.example.com`;
  const names = Array.from({ length: N }, (_, i) => `s${String(i).padStart(4, '0')}.${domain}`);
  const api = () => request(h.app);

  beforeAll(async () => {
    h = harness();
    admin = await adminToken(h.app);
    const wildcard = await chainFor([`*.${domain}`]);
    const groupToken = await createGroup(h.app, admin, g);
    await mapLimited(names, 8, async (fqdn) => {
      await api().post(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', admin).send({ data: { certificate: wildcard.certificate, private_key: wildcard.privateKey } }).expect(201);
      await api().post(`/rks/v1/group/${g}/secrets/${fqdn}`).set('X-Vault-Token', admin).expect(201);
    });
    nodeToken = (await registerNode(h.app, groupToken, 'n1')).nodeToken;
  }, 180_000);
  afterAll(() => h.close());

  it('holds every association, with a node policy of the same few lines as an empty group', async () => {
    expect((await api().get(`/rks/v1/group/${g}/secrets`).set('X-Vault-Token', admin).expect(200)).body).toEqual(names);
    expect(await groupCopies(g)).toEqual(names);
    expect((await vaultRead(`sys/policies/acl/rks_node_${g}`)).body.data.policy).toBe(nodePolicy(g));
  });

  it('its node reads any of them, revalidates with a 304 of no body, and sees a change at once', async () => {
    for (const fqdn of [names[0], names[N - 1]]) expect((await api().get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', nodeToken)).status).toBe(200);
    const full = await api().get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).expect(200);
    expect(full.body.secrets).toEqual(names);
    const held = await api().get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).set('If-None-Match', full.headers.etag);
    expect([held.status, held.text]).toEqual([304, '']);

    await api().delete(`/rks/v1/group/${g}/secrets/${names[1]}`).set('X-Vault-Token', admin).expect(204);
    expect((await api().get(`/rks/v1/secret/${names[1]}`).set('X-Vault-Token', nodeToken)).status).toBe(403);
    // The list is read at most once a second per group and instance.
    await new Promise((r) => setTimeout(r, 1100));
    const changed = await api().get('/rks/v1/node/secrets').set('X-Vault-Token', nodeToken).set('If-None-Match', full.headers.etag).expect(200);
    expect(changed.body.secrets).toEqual(names.filter((n) => n !== names[1]));
    expect(changed.headers.etag).not.toBe(full.headers.etag);
    await api().post(`/rks/v1/group/${g}/secrets/${names[1]}`).set('X-Vault-Token', admin).expect(201);
    expect((await api().get(`/rks/v1/secret/${names[1]}`).set('X-Vault-Token', nodeToken)).status).toBe(200);
  });

  it('an update reaches the node at once', async () => {
    const fqdn = names[7];
    const next = await chainFor([fqdn]);
    await api().put(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', admin).send({ data: { certificate: next.certificate, private_key: next.privateKey } }).expect(200);
    expect((await api().get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', nodeToken).expect(200)).body.data.certificate).toBe(next.certificate);
  });

  it('the inventory pages through the group', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await api()
        .get('/rks/v1/secrets')
        .query({ group: g, limit: 100, ...(after ? { after } : {}) })
        .set('X-Vault-Token', admin)
        .expect(200);
      seen.push(...page.body.secrets.map((s: { name: string; groups: string[] }) => s.name));
      after = page.body.next;
    } while (after);
    expect(seen).toEqual(names);
    expect((await api().get('/rks/v1/groups').set('X-Vault-Token', admin).expect(200)).body.groups).toContainEqual(expect.objectContaining({ name: g, secrets: N }));
  });

  it('deleting the group removes every copy', async () => {
    await api().delete(`/rks/v1/group/${g}`).set('X-Vault-Token', admin).expect(204);
    expect(await groupCopies(g)).toEqual([]);
    expect((await api().get(`/rks/v1/secret/${names[0]}/groups`).set('X-Vault-Token', admin).expect(200)).body).toEqual([]);
  }, 60_000);
});
