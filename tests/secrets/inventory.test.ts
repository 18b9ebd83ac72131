import { GroupService } from '../../src/groups/service';
import { Storage } from '../../src/secrets/storage';
import { CATALOG_SHARDS, shardOf } from '../../src/secrets/catalog';
import { Inventory } from '../../src/secrets/inventory';
import { SecretService } from '../../src/secrets/service';
import { NO_CALLBACK } from '../support/constants';
import { MEMORY_SECRET_PARTS, MemoryKv, MemoryPolicies, MemoryTokens, memorySession } from '../support/memory-vault';
import { DAYS, chainFor } from '../support/pki';

const HOUR = 3600_000;

/** Expiry rules and the inventory against an in-memory Vault. */
describe('expiry and inventory (in memory)', () => {
  let kv: MemoryKv;
  let secrets: SecretService;
  let groups: GroupService;
  let inventory: Inventory;
  let admin: string;
  const push = async (fqdn: string, lifetimeMs: number, ttl?: number) => {
    const c = await chainFor([fqdn], { notAfter: new Date(Date.now() + lifetimeMs) });
    return { chain: c, outcome: await secrets.create(admin, fqdn, { certificate: c.certificate, private_key: c.privateKey, ...(ttl ? { meta: { ttl } } : {}) }) };
  };
  beforeEach(() => {
    kv = new MemoryKv();
    const tokens = new MemoryTokens();
    secrets = new SecretService(new Storage(kv), 300, MEMORY_SECRET_PARTS);
    groups = new GroupService(new Storage(kv), new MemoryPolicies(), tokens, memorySession(tokens));
    inventory = new Inventory(new Storage(kv), (d) => secrets.ttlOf(d));
    admin = tokens.issue(['rks_admin']);
  });

  it('a push warns about a certificate that lapses within the TTL or within a day, and not otherwise', async () => {
    expect((await push('a.example.com', 60 * DAYS(1))).outcome).toEqual({ warnings: [] });
    expect((await push('b.example.com', 12 * HOUR)).outcome.warnings).toEqual([expect.stringMatching(/^the certificate expires within a day, at /)]);
    expect((await push('c.example.com', 30 * 60_000, 3600)).outcome.warnings).toEqual([expect.stringMatching(/within the secret's TTL \(3600 s\): nodes may keep it after it lapsed/)]);
  });

  it('an expired certificate is not handed out (410 certificate_expired) nor associated (409), whoever stored it', async () => {
    const { chain } = await push('gone.example.com', 60 * DAYS(1));
    await groups.create(admin, 'edge', NO_CALLBACK);
    // Time passes: stored facts say it has lapsed.
    const entry = (await kv.read<any>('gone.example.com'))!;
    await kv.write('gone.example.com', { ...entry.data, info: { ...entry.data.info, notAfter: new Date(Date.now() - 1000).toISOString() } }, admin);
    await expect(secrets.get(admin, 'gone.example.com')).rejects.toMatchObject({ status: 410, code: 'certificate_expired', message: expect.stringContaining('expired at') });
    await expect(groups.associate(admin, 'edge', 'gone.example.com')).rejects.toMatchObject({ status: 409, code: 'certificate_expired' });
    // A secret stored before facts were kept: its certificate is read instead.
    await kv.write('gone.example.com', { certificate: chain.certificate, private_key: chain.privateKey }, admin);
    expect((await secrets.get(admin, 'gone.example.com')).data.certificate).toBe(chain.certificate);
  });

  it('a secret a classic RKS stored unchecked (a placeholder) is kept: served as stored, flagged invalid in the inventory', async () => {
    await push('good.example.com', 60 * DAYS(1));
    await kv.write('placeholder.example.com', { certificate: 'certificate', private_key: 'key', meta: { ttl: 60 } }, admin);
    expect(await secrets.get(admin, 'placeholder.example.com')).toEqual({ data: { certificate: 'certificate', private_key: 'key', meta: { ttl: 60 } } });
    expect(await inventory.secret(admin, 'placeholder.example.com')).toEqual({
      name: 'placeholder.example.com', invalid: expect.stringContaining('not a readable PEM certificate'), groups: [], ttl: 60, managed: false, expired: false,
    });
    // Written straight to Vault, as a classic did: the catalog learns of it when it is reconciled.
    await inventory.reconcile(admin);
    const all = await inventory.secrets(admin, { limit: 10 });
    expect(all.secrets.map((x) => [x.name, Boolean(x.invalid)])).toEqual([['good.example.com', false], ['placeholder.example.com', true]]);
    // An expiry listing leaves it out (it has no expiry) rather than failing.
    expect((await inventory.secrets(admin, { limit: 10, expiringWithin: 365 * 86400 })).secrets.map((x) => x.name)).toEqual(['good.example.com']);
  });

  it('every push, association and delete keeps the catalog: one entry in one of its shards, never the key', async () => {
    const { chain } = await push('www.example.com', 10 * DAYS(1));
    const shard = `index/catalog/${shardOf('www.example.com')}`;
    const entry = () => kv.read<any>(shard).then((e) => e!.data.secrets['www.example.com']);
    expect(await entry()).toMatchObject({ version: 1, info: { notAfter: chain.leaf.cert.notAfter.toISOString() }, groups: [], groupsVersion: 0 });
    expect(JSON.stringify((await kv.read<any>(shard))!.data)).not.toContain('PRIVATE KEY');
    await groups.create(admin, 'edge', NO_CALLBACK);
    await groups.associate(admin, 'edge', 'www.example.com');
    expect(await entry()).toMatchObject({ groups: ['edge'], groupsVersion: 1 });
    await groups.dissociate(admin, 'edge', 'www.example.com');
    expect(await entry()).toMatchObject({ groups: [], groupsVersion: 2 });
    await secrets.delete(admin, 'www.example.com');
    expect((await kv.read<any>(shard))!.data.secrets).toEqual({});
    expect(Number.parseInt(shardOf('x.example.com'), 16)).toBeLessThan(CATALOG_SHARDS);
  });

  it('a page is cut from the catalog held in memory while its serial holds: one read per shard, once', async () => {
    for (const n of ['a.example.com', 'b.example.com', 'c.example.com']) await push(n, 60 * DAYS(1));
    const reads: string[] = [];
    const read = kv.read.bind(kv);
    kv.read = (async (path: string, token: string, version?: number) => {
      reads.push(path);
      return read(path, token, version);
    }) as typeof kv.read;
    const version = kv.version.bind(kv);
    kv.version = async (path: string) => {
      reads.push(`metadata of ${path}`);
      return version(path);
    };
    // Reconciled against the listing it reads (nothing to repair: no secret read); the page then
    // comes from that listing, and the listing does not start a reconciliation beside.
    await inventory.reconcile(admin);
    const first = await inventory.secrets(admin, { limit: 2 });
    expect(reads.filter((p) => p.startsWith('index/catalog/'))).toHaveLength(3);
    expect(reads.filter((p) => !/^(metadata of )?index\//.test(p))).toEqual([]);
    reads.length = 0;
    expect((await inventory.secrets(admin, { limit: 2, after: first.next })).secrets.map((s) => s.name)).toEqual(['c.example.com']);
    expect(reads).toEqual(['index/catalog-serial']);
    // A change anywhere (another rks instance too) moves the serial: the next page reads again.
    await groups.create(admin, 'edge', NO_CALLBACK);
    await groups.associate(admin, 'edge', 'c.example.com');
    expect((await inventory.secrets(admin, { limit: 2, after: first.next })).secrets[0]).toMatchObject({ name: 'c.example.com', groups: ['edge'] });
    await push('d.example.com', 60 * DAYS(1));
    expect((await inventory.secrets(admin, { limit: 5, after: first.next })).secrets.map((s) => s.name)).toEqual(['c.example.com', 'd.example.com']);
    // Another instance, its own memory: the same answer.
    const other = new Inventory(new Storage(kv), (d) => secrets.ttlOf(d));
    expect((await other.secrets(admin, { limit: 5 })).secrets.map((s) => s.name)).toEqual(['a.example.com', 'b.example.com', 'c.example.com', 'd.example.com']);
  });

  it('a writer that read before a delete and re-create writes again: the catalog ends at the certificate stored', async () => {
    await push('a.example.com', 60 * DAYS(1));
    const replacement = await chainFor(['a.example.com'], { notAfter: new Date(Date.now() + 5 * DAYS(1)) });
    // An entry this writer is about to make (lost, say): it reads version 1 of the secret.
    await kv.write(`index/catalog/${shardOf('a.example.com')}`, { secrets: {} }, admin);
    let raced = false;
    kv.beforeWrite = async (path) => {
      if (path === `index/catalog/${shardOf('a.example.com')}` && !raced) {
        raced = true;
        // Another instance deletes the secret and pushes it again (its version starts at 1 again).
        await secrets.delete(admin, 'a.example.com');
        await secrets.create(admin, 'a.example.com', { certificate: replacement.certificate, private_key: replacement.privateKey });
      }
    };
    await (inventory as any).catalog.refresh(admin, 'a.example.com');
    expect(raced).toBe(true);
    const entry = (await kv.read<any>(`index/catalog/${shardOf('a.example.com')}`))!.data.secrets['a.example.com'];
    expect(entry.info.notAfter).toBe(replacement.leaf.cert.notAfter.toISOString());
  });

  it('what a writer of the catalog or the schedule forges cannot rename, add fields or break a page', async () => {
    await push('a.example.com', 60 * DAYS(1));
    await push('b.example.com', 60 * DAYS(1));
    const shard = `index/catalog/${shardOf('a.example.com')}`;
    const stored = (await kv.read<any>(shard))!.data.secrets;
    const forged = { ...stored['a.example.com'], info: { ...stored['a.example.com'].info, name: 'evil.example.com', pending: true, private_key: 'x' } };
    await kv.write(shard, { secrets: { ...stored, 'a.example.com': forged, 'not a name': forged, 'c.example.com': { groups: 'x' } } }, admin);
    // A renewal state of the wrong types: the entry is left out (made again by the next rebuild), never shown half.
    const bShard = `index/catalog/${shardOf('b.example.com')}`;
    const bStored = (await kv.read<any>(bShard))!.data.secrets;
    await kv.write(bShard, { secrets: { ...bStored, 'b.example.com': { ...bStored['b.example.com'], managed: { issuer: 'rks-ca' }, renewal: { renewAt: 'soon', failures: 'many' } } } }, admin);
    const inv = new Inventory(new Storage(kv), (d) => secrets.ttlOf(d));
    // The forged entry is left out of the page; reconciled, it is described again from the secret.
    expect((await inv.secrets(admin, { limit: 10 })).secrets.map((x) => x.name)).not.toContain('b.example.com');
    await inv.reconcile(admin);
    const page = await inv.secrets(admin, { limit: 10 });
    expect(page.secrets.map((x) => x.name)).toEqual(['a.example.com', 'b.example.com']);
    expect(page.secrets[0]).not.toHaveProperty('pending');
    expect(JSON.stringify(page)).not.toContain('private_key');
  });

  it('lists secrets in name order, a page at a time, with facts, groups and TTL', async () => {
    for (const n of ['c.example.com', 'a.example.com', 'b.example.com', 'd.example.com', 'e.example.com']) await push(n, 60 * DAYS(1), 120);
    await groups.create(admin, 'edge', NO_CALLBACK);
    await groups.associate(admin, 'edge', 'b.example.com');
    const first = await inventory.secrets(admin, { limit: 2 });
    expect(first.secrets.map((s) => s.name)).toEqual(['a.example.com', 'b.example.com']);
    expect(first.next).toBe('b.example.com');
    expect(first.secrets[1]).toMatchObject({ subject: 'CN=b.example.com', sans: ['DNS:b.example.com'], keyType: 'EC P-256', groups: ['edge'], ttl: 120, managed: false, expired: false, chainLength: 3 });
    const second = await inventory.secrets(admin, { limit: 2, after: first.next });
    expect(second.secrets.map((s) => s.name)).toEqual(['c.example.com', 'd.example.com']);
    const last = await inventory.secrets(admin, { limit: 2, after: second.next });
    expect(last).toEqual({ secrets: [expect.objectContaining({ name: 'e.example.com' })] });
    expect((await inventory.secrets(admin, { limit: 10, group: 'edge' })).secrets.map((s) => s.name)).toEqual(['b.example.com']);
    await expect(inventory.secrets(admin, { limit: 10, group: 'nope' })).rejects.toMatchObject({ status: 404 });
  });

  it('filters on expiry; secrets stored before the catalog existed are added to it, and leftovers of a deletion removed', async () => {
    await push('soon.example.com', 3 * DAYS(1));
    await push('later.example.com', 60 * DAYS(1));
    const old = await chainFor(['old.example.com'], { notAfter: new Date(Date.now() + 5 * DAYS(1)) });
    // Stored by an older rks: no facts, not in the index.
    await kv.write('old.example.com', { certificate: old.certificate, private_key: old.privateKey }, admin);
    // Left in the catalog by a deletion that stopped half-way.
    const ghostShard = `index/catalog/${shardOf('ghost.example.com')}`;
    const soonEntry = (await kv.read<any>(`index/catalog/${shardOf('soon.example.com')}`))!.data.secrets['soon.example.com'];
    const ghost = { ...soonEntry, info: { ...soonEntry.info, notAfter: new Date(1000).toISOString() } };
    await kv.write(ghostShard, { secrets: { ...((await kv.read<any>(ghostShard))?.data.secrets ?? {}), 'ghost.example.com': ghost } }, admin);

    // What a listing starts beside (at most every few minutes), awaited here.
    await inventory.reconcile(admin);
    const week = await inventory.secrets(admin, { limit: 100, expiringWithin: 7 * 86400 });
    expect(week.secrets.map((s) => s.name)).toEqual(['old.example.com', 'soon.example.com']);
    expect(week.secrets[0].notAfter).toBe(old.leaf.cert.notAfter.toISOString());
    expect((await kv.read<any>(`index/catalog/${shardOf('old.example.com')}`))!.data.secrets['old.example.com'].info.notAfter).toBe(old.leaf.cert.notAfter.toISOString());
    expect((await kv.read<any>(ghostShard))!.data.secrets['ghost.example.com']).toBeUndefined();
    // The older secret itself is left as it was (its previous version stays for rollback).
    expect((await kv.read<any>('old.example.com'))!.version).toBe(1);
  });

  it('lists groups with their sizes', async () => {
    await push('a.example.com', 60 * DAYS(1));
    await groups.create(admin, 'edge', NO_CALLBACK);
    await groups.create(admin, 'api', { ...NO_CALLBACK, callbackURL: 'https://manager.example.com/cb', oauthURL: 'https://manager.example.com/token', oauthClientID: 'id', oauthClientSecret: 's' });
    await groups.associate(admin, 'edge', 'a.example.com');
    expect(await inventory.groups(admin, { limit: 10 })).toEqual({
      groups: [
        { name: 'api', callback: true, secrets: 0, nodes: 0 },
        { name: 'edge', callback: false, secrets: 1, nodes: 0 },
      ],
    });
    expect(await inventory.groups(admin, { limit: 1 })).toEqual({ groups: [expect.objectContaining({ name: 'api' })], next: 'api' });
  });
});
