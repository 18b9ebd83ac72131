import { CatalogEntry, renewalStatus } from '../../src/secrets/catalog';
import { Inventory } from '../../src/secrets/inventory';
import { Listing, Listings, unlisted } from '../../src/secrets/listing';
import { Storage } from '../../src/secrets/storage';
import { MemoryKv } from '../support/memory-vault';

const facts = (name: string, over: Partial<NonNullable<CatalogEntry['info']>> = {}) => ({
  subject: `CN=${name}`,
  sans: [name, `www.${name}`],
  issuer: 'CN=rks CA',
  notBefore: '2026-12-01T10:00:00.000Z',
  notAfter: '2026-12-11T10:00:00.000Z',
  keyType: 'EC P-256',
  sha256Fingerprint: Array.from({ length: 32 }, (_, i) => ((i * 37 + name.length) % 256).toString(16).toUpperCase().padStart(2, '0')).join(':'),
  chainLength: 2,
  ...over,
});

const strip = ({ version: _v, groupsVersion: _g, ...e }: CatalogEntry) => ({ ...e, groups: [...e.groups].sort() });

/** What the inventory keeps in memory must give back exactly what the catalog said. */
describe('the in-memory listing', () => {
  const entries: [string, CatalogEntry][] = [
    ['b.example.com', { version: 3, info: facts('b.example.com'), ttl: 600, groups: ['edge', 'eu'], groupsVersion: 4 }],
    ['a.example.com', { version: 1, info: facts('a.example.com', { notAfter: '2026-12-11T10:00:00.5Z', sha256Fingerprint: 'not hex' }), groups: [], groupsVersion: 0 }],
    ['c.example.com', { version: 2, info: facts('c.example.com'), managed: { issuer: 'rks-ca', sans: ['c.example.com'], keyType: 'ec-p256', lifetime: 864000 }, renewal: { renewAt: 1_765_000_000, failures: 0, lastAttempt: '2026-12-01T10:00:00.000Z' }, groups: ['eu'], groupsVersion: 1 }],
    ['d.example.com', { version: 0, managed: { issuer: 'pebble', sans: ['d.example.com'], keyType: 'ec-p256' }, renewal: { renewAt: 1_765_000_100, failures: 3, lastError: 'the CA said "no"\n\u0000 d.example.com', queued: true }, groups: [], groupsVersion: 0 }],
    ['e.example.com', { version: 1, invalid: 'not a certificate', ttl: 60, groups: ['edge'], groupsVersion: 1 }],
    ['f.example.com', { version: 1, info: facts('f.example.com'), managed: { issuer: 'pebble', sans: ['f.example.com'], keyType: 'ec-p256' }, renewal: { renewAt: 1, failures: 0, inProgress: true }, groups: [], groupsVersion: 0 }],
    // Written by whoever may write the catalog: out of any record's range, kept as it is.
    ['g.example.com', { version: 1, info: facts('g.example.com', { notBefore: '1960-01-01T00:00:00.000Z' }), managed: { issuer: 'rks-ca', sans: ['g.example.com'], keyType: 'ec-p256' }, renewal: { renewAt: 2 ** 40, failures: 0, lastAttempt: '2026-12-01T10:00:00.123Z' }, groups: [], groupsVersion: 0 }],
  ];
  const build = () => {
    const b = Listing.builder(7);
    for (const [n, e] of entries) b.add(n, e);
    return b.done();
  };

  it('gives every entry back as the catalog had it, in name order', () => {
    const listing = build();
    expect(listing.serial).toBe(7);
    const names = entries.map(([n]) => n).sort();
    expect(Array.from({ length: listing.size }, (_, i) => listing.name(i))).toEqual(names);
    for (let i = 0; i < listing.size; i++) expect(listing.entry(i)).toEqual(strip(new Map(entries).get(listing.name(i))!));
  });

  it('answers the filters from its records as the full entries would', () => {
    const listing = build();
    const now = Date.parse('2026-12-05T00:00:00Z');
    for (let i = 0; i < listing.size; i++) {
      const e = new Map(entries).get(listing.name(i))!;
      expect(listing.status(i, now)).toBe(renewalStatus(e, now));
      expect(listing.groups(i)).toEqual([...e.groups].sort());
      expect(listing.issuer(i)).toBe(e.managed?.issuer);
      // To the second: what the filters need.
      expect(listing.notAfter(i)).toEqual(e.info ? Math.floor(Date.parse(e.info.notAfter) / 1000) * 1000 : NaN);
    }
  });

  it('is built again over the records of the one it replaces, and nothing of those shows through', () => {
    // The one replaced: its records full of other values (every field, every flag).
    const old = Listing.builder(1);
    for (let i = 0; i < 5000; i++) {
      const name = `old${i}.example.com`;
      old.add(name, { version: 1, info: facts(name), managed: { issuer: 'rks-ca', sans: [name], keyType: 'ec-p256' }, renewal: { renewAt: 1_765_000_000 + i, failures: 2, lastAttempt: '2026-12-01T10:00:00.000Z', queued: true, inProgress: true }, groups: ['x'], groupsVersion: 1 });
    }
    const replaced = old.done();
    const b = Listing.builder(7, replaced.release());
    for (const [n, e] of entries) b.add(n, e);
    const listing = b.done();
    expect(replaced.size).toBe(0);
    const now = Date.parse('2026-12-05T00:00:00Z');
    for (let i = 0; i < listing.size; i++) {
      const e = new Map(entries).get(listing.name(i))!;
      expect(listing.entry(i)).toEqual(strip(e));
      expect(listing.status(i, now)).toBe(renewalStatus(e, now));
      expect(listing.notAfter(i)).toEqual(e.info ? Math.floor(Date.parse(e.info.notAfter) / 1000) * 1000 : NaN);
    }
  });

  it('finds where a page starts after any name', () => {
    const listing = build();
    expect(listing.start()).toBe(0);
    expect(listing.start('a.example.com')).toBe(1);
    expect(listing.start('c')).toBe(2);
    expect(listing.start('z')).toBe(listing.size);
  });

  it('keeps what secrets share once: 10,000 entries take some 100 bytes each', () => {
    const b = Listing.builder(1);
    for (let i = 0; i < 10_000; i++) {
      const name = `n${i}.example.com`;
      b.add(name, { version: 1, info: facts(name), ttl: 3600, managed: { issuer: 'rks-ca', sans: [name], keyType: 'ec-p256', lifetime: 864000 }, renewal: { renewAt: 1_765_000_000 + i, failures: 0, lastAttempt: new Date(1_765_000_000_000 + i * 1000).toISOString() }, groups: ['edge'], groupsVersion: 1 });
    }
    const listing = b.done();
    expect(listing.entry(listing.start('n5000.example.co')).info!.subject).toBe('CN=n5000.example.com');
    // The records, not objects per entry: well under the 1 KB an entry takes as objects.
    const chunks = (listing as unknown as { chunks: Buffer[] }).chunks;
    expect(chunks.reduce((n, c) => n + c.length, 0) / listing.size).toBeLessThanOrEqual(100);
    expect((listing as unknown as { shapes: string[] }).shapes.length).toBe(1);
  });
});

describe('what a reconciliation describes again', () => {
  const listed = (names: string[]) => {
    const b = Listing.builder(1);
    for (const n of names) b.add(n, { version: 1, groups: [], groupsVersion: 0 });
    return b.done();
  };

  it('names the secrets stored but not listed and the listed ones no longer stored, and no other', () => {
    const listing = listed(['b.example.com', 'd.example.com', 'e.example.com', 'x.example.com']);
    expect(unlisted(['e.example.com', 'a.example.com', 'b.example.com', 'c.example.com', 'z.example.com'], listing).sort()).toEqual(
      ['a.example.com', 'c.example.com', 'd.example.com', 'x.example.com', 'z.example.com'],
    );
    expect(unlisted(['b.example.com', 'd.example.com', 'e.example.com', 'x.example.com'], listing)).toEqual([]);
    expect(unlisted([], listing).sort()).toEqual(['b.example.com', 'd.example.com', 'e.example.com', 'x.example.com']);
    expect(unlisted(['a.example.com'], listed([]))).toEqual(['a.example.com']);
  });

  it('leaves out keys of the mount that are no secret names (rks\'s own folders)', () => {
    expect(unlisted(['index/', 'managed/', 'a.example.com'], listed(['a.example.com']))).toEqual([]);
  });
});

describe('a listing let go of', () => {
  it('says so, and a page asked for meanwhile is read from the listing that replaced it, never from the one let go of', async () => {
    const entry: CatalogEntry = { version: 1, info: facts('a.example.com'), groups: [], groupsVersion: 0 };
    const old = Listing.builder(1);
    old.add('a.example.com', entry);
    const released = old.done();
    const next = Listing.builder(2, released.release());
    next.add('a.example.com', entry);
    const current = next.done();
    expect(released.released).toBe(true);
    expect(released.size).toBe(0);
    // Another caller let the first go between the answer and the page's own look at it.
    const answers = [released, current];
    const listings = { current: async () => answers.shift() ?? current } as unknown as Listings;
    const inventory = new Inventory(new Storage(new MemoryKv()), () => 300, listings);
    (inventory as unknown as { reconciledAt: number }).reconciledAt = Date.now();
    expect((await inventory.secrets('root', { limit: 10 })).secrets.map((s) => s.name)).toEqual(['a.example.com']);
  });
});
