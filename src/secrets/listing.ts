import { isSecretName } from '../names';
import type { Catalog } from './catalog';
import { CatalogEntry, RenewalStatus, renewalStatus } from './catalog';
import type { CertificateFacts, ManagedSpec } from '../records/secrets';

/** What a listing keeps of an entry: all the inventory shows, not the versions. */
export type ListedEntry = Omit<CatalogEntry, 'version' | 'groupsVersion'>;

/**
 * A fixed-size record per secret. What secrets share (issuer, key type, spec, TTL: the entry
 * with its name and its own values taken out) is kept once as a "shape"; the record holds the
 * rest as numbers and bytes.
 */
const RECORD = 64;
/** Records a chunk holds (a power of two). */
const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;
/** Dates are whole seconds (u32, 0: none); a date that is not stays in the shape. */
const OFF = { shape: 0, groups: 4, flags: 8, has: 9, issuer: 12, notBefore: 16, notAfter: 20, renewAt: 24, lastAttempt: 28, fingerprint: 32 };
const FLAG = { managed: 1, info: 2, renewal: 4, failing: 8, queued: 16, inProgress: 32, plain: 64 };
/** Which values the record holds rather than the shape. */
const HAS = { notBefore: 1, notAfter: 2, renewAt: 4, lastAttempt: 8, fingerprint: 16 };
/** The name, where it appears in a shape's JSON text. */
const NAME = '\\u0000';
const FINGERPRINT = /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/;

/** An ISO date of whole seconds that reads back to the same text. */
const exactDate = (s: unknown): s is string => typeof s === 'string' && inSeconds(Date.parse(s)) && new Date(Date.parse(s)).toISOString() === s;
const inSeconds = (ms: number) => Number.isSafeInteger(ms) && ms % 1000 === 0 && ms > 0 && ms / 1000 <= 0xffffffff;
/** Seconds as a record holds them for filters: whatever the value, within u32 (0 for none). */
const clamped = (sec: number) => (Number.isFinite(sec) ? Math.min(0xffffffff, Math.max(1, Math.floor(sec))) : 0);

/** Strings said many times, each kept once. */
class Interned<T> {
  readonly values: T[] = [];
  private readonly ids = new Map<string, number>();
  id(key: string, value: T): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(value);
      this.ids.set(key, id);
    }
    return id;
  }
}

/**
 * The catalog in memory, in name order, at some 100 bytes a secret (whole entries as objects
 * take ten times that): what the inventory's pages are cut from while the catalog's serial
 * holds. Filters read the records' numbers; only a page's entries are made whole again.
 */
export class Listing {
  private constructor(
    readonly serial: number,
    /** The names in name order, end to end (a string each would take three times as much). */
    private readonly text: Buffer,
    /** Where each name ends in `text`. */
    private readonly ends: Uint32Array,
    /** Records in the order they were read; `order` puts them in name order. */
    private chunks: Buffer[],
    private order: Uint32Array,
    private readonly shapes: string[],
    private readonly groupSets: string[][],
    private readonly issuers: string[],
  ) {}

  /** `spare`: record chunks a listing let go of, written over (see `release`). */
  static builder(serial: number, spare: Buffer[] = []): ListingBuilder {
    return new ListingBuilder(serial, (...a) => new Listing(...a), spare);
  }

  /**
   * Let go of for the next listing: whoever got it before must look again. A reader checks this
   * right after its await (another caller may release it in between), then reads without awaiting.
   */
  released = false;

  /**
   * Empties this listing and hands its record chunks on to the next one built: at 200,000
   * secrets the two would hold 13 MB of records side by side until V8 collects the old. Whoever
   * still holds it sees no entries (readers read a listing before they await anything else).
   */
  release(): Buffer[] {
    this.released = true;
    const chunks = this.chunks;
    this.chunks = [];
    this.order = new Uint32Array(0);
    return chunks;
  }

  get size(): number {
    return this.order.length;
  }

  name(i: number): string {
    return this.text.toString('latin1', i ? this.ends[i - 1] : 0, this.ends[i]);
  }

  /** The chunk holding the record at position `i`, and where in it. */
  private chunk(i: number): Buffer {
    return this.chunks[this.order[i]! >>> CHUNK_BITS]!;
  }

  private at(i: number): number {
    return (this.order[i]! & (CHUNK - 1)) * RECORD;
  }

  /** The first position after `after` (0 without it). */
  start(after?: string): number {
    let from = 0;
    if (after === undefined) return 0;
    for (let hi = this.order.length; from < hi; ) {
      const mid = (from + hi) >>> 1;
      if (this.name(mid) <= after) from = mid + 1;
      else hi = mid;
    }
    return from;
  }

  groups(i: number): string[] {
    return this.groupSets[this.chunk(i).readUInt32LE(this.at(i) + OFF.groups)]!;
  }

  /** The certificate's end (ms since the epoch), NaN without one. */
  notAfter(i: number): number {
    const sec = this.chunk(i).readUInt32LE(this.at(i) + OFF.notAfter);
    return sec ? sec * 1000 : NaN;
  }

  /** When a managed secret's renewal is next due (seconds since the epoch; NaN when none is scheduled). */
  renewAt(i: number): number {
    const [r, at] = [this.chunk(i), this.at(i)];
    return r[at + OFF.flags]! & FLAG.renewal ? r.readUInt32LE(at + OFF.renewAt) : NaN;
  }

  /** A managed secret's issuer (undefined for a pushed one). */
  issuer(i: number): string | undefined {
    const [r, at] = [this.chunk(i), this.at(i)];
    return r[at + OFF.flags]! & FLAG.managed ? this.issuers[r.readUInt32LE(at + OFF.issuer)] : undefined;
  }

  status(i: number, now = Date.now()): RenewalStatus | undefined {
    const [r, at] = [this.chunk(i), this.at(i)];
    const flags = r[at + OFF.flags]!;
    if (!(flags & FLAG.managed)) return undefined;
    const renewal = flags & FLAG.renewal
      ? { renewAt: r.readUInt32LE(at + OFF.renewAt), failures: flags & FLAG.failing ? 1 : 0, ...(flags & FLAG.queued ? { queued: true as const } : {}), ...(flags & FLAG.inProgress ? { inProgress: true as const } : {}) }
      : undefined;
    return renewalStatus({ managed: {} as ManagedSpec, info: flags & FLAG.info ? ({} as CertificateFacts) : undefined, renewal }, now);
  }

  /** The entry at `i`, whole. */
  entry(i: number): ListedEntry {
    const name = this.name(i);
    const [r, at] = [this.chunk(i), this.at(i)];
    const flags = r[at + OFF.flags]!;
    const has = r[at + OFF.has]!;
    const shape = this.shapes[r.readUInt32LE(at + OFF.shape)]!;
    const e = JSON.parse(flags & FLAG.plain ? shape : shape.split(NAME).join(name)) as ListedEntry;
    if (e.info) {
      if (has & HAS.notBefore) e.info.notBefore = new Date(r.readUInt32LE(at + OFF.notBefore) * 1000).toISOString();
      if (has & HAS.notAfter) e.info.notAfter = new Date(r.readUInt32LE(at + OFF.notAfter) * 1000).toISOString();
      if (has & HAS.fingerprint) e.info.sha256Fingerprint = (r.toString('hex', at + OFF.fingerprint, at + OFF.fingerprint + 32).toUpperCase().match(/../g) ?? []).join(':');
    }
    if (e.renewal) {
      if (has & HAS.renewAt) e.renewal.renewAt = r.readUInt32LE(at + OFF.renewAt);
      if (has & HAS.lastAttempt) e.renewal.lastAttempt = new Date(r.readUInt32LE(at + OFF.lastAttempt) * 1000).toISOString();
    }
    e.groups = this.groups(i);
    return e;
  }
}

/**
 * Where the names stored (`stored`, any order) and a listing's disagree: stored but not listed,
 * or listed but no longer stored. What `Catalog.repair` describes again.
 */
export function unlisted(stored: string[], listing: Pick<Listing, 'size' | 'name'>): string[] {
  const names = stored.filter(isSecretName).sort();
  const out: string[] = [];
  let [i, j] = [0, 0];
  while (i < names.length || j < listing.size) {
    const [a, b] = [names[i], j < listing.size ? listing.name(j) : undefined];
    if (a === b) [i, j] = [i + 1, j + 1];
    else if (b === undefined || (a !== undefined && a < b)) out.push(names[i++]!);
    else [out[out.length], j] = [b, j + 1];
  }
  return out;
}

/** Takes entries in any order, a shard at a time; `done` sorts them by name. */
export class ListingBuilder {
  private names: string[] = [];
  private chunks: Buffer[] = [];
  private readonly shapes = new Interned<string>();
  private readonly groupSets = new Interned<string[]>();
  private readonly issuers = new Interned<string>();

  constructor(
    private readonly serial: number,
    private readonly make: (serial: number, text: Buffer, ends: Uint32Array, chunks: Buffer[], order: Uint32Array, shapes: string[], groupSets: string[][], issuers: string[]) => Listing,
    private readonly spare: Buffer[] = [],
  ) {}

  add(name: string, entry: CatalogEntry): void {
    const i = this.names.length;
    // In chunks: no copy of what was read as it grows.
    if ((i & (CHUNK - 1)) === 0) this.chunks.push(this.spare.pop() ?? Buffer.alloc(CHUNK * RECORD));
    this.names.push(name);
    const at = (i & (CHUNK - 1)) * RECORD;
    const r = this.chunks[i >>> CHUNK_BITS]!;
    // A spare chunk holds an earlier listing's records.
    r.fill(0, at, at + RECORD);
    // The entry without what each secret has of its own; those go to the record.
    const { version: _v, groupsVersion: _g, groups, info, renewal, ...rest } = entry;
    const e: Omit<ListedEntry, 'groups'> = { ...rest, ...(info ? { info: { ...info } } : {}), ...(renewal ? { renewal: { ...renewal } } : {}) };
    let has = 0;
    let flags = 0;
    r.writeUInt32LE(e.info ? clamped(Date.parse(e.info.notAfter) / 1000) : 0, at + OFF.notAfter);
    if (e.info) {
      flags |= FLAG.info;
      if (exactDate(e.info.notBefore)) {
        r.writeUInt32LE(Date.parse(e.info.notBefore) / 1000, at + OFF.notBefore);
        delete (e.info as Partial<CertificateFacts>).notBefore;
        has |= HAS.notBefore;
      }
      if (exactDate(e.info.notAfter)) {
        delete (e.info as Partial<CertificateFacts>).notAfter;
        has |= HAS.notAfter;
      }
      if (FINGERPRINT.test(e.info.sha256Fingerprint)) {
        r.write(e.info.sha256Fingerprint.replace(/:/g, ''), at + OFF.fingerprint, 32, 'hex');
        delete (e.info as Partial<CertificateFacts>).sha256Fingerprint;
        has |= HAS.fingerprint;
      }
    }
    if (e.managed) {
      flags |= FLAG.managed;
      r.writeUInt32LE(this.issuers.id(e.managed.issuer, e.managed.issuer), at + OFF.issuer);
    }
    if (e.renewal) {
      flags |= FLAG.renewal;
      if (e.renewal.failures > 0) flags |= FLAG.failing;
      if (e.renewal.queued) flags |= FLAG.queued;
      if (e.renewal.inProgress) flags |= FLAG.inProgress;
      r.writeUInt32LE(clamped(e.renewal.renewAt), at + OFF.renewAt);
      if (inSeconds(e.renewal.renewAt * 1000)) {
        delete (e.renewal as { renewAt?: number }).renewAt;
        has |= HAS.renewAt;
      }
      if (exactDate(e.renewal.lastAttempt)) {
        r.writeUInt32LE(Date.parse(e.renewal.lastAttempt) / 1000, at + OFF.lastAttempt);
        delete e.renewal.lastAttempt;
        has |= HAS.lastAttempt;
      }
    }
    let shape = JSON.stringify(e);
    // A name never holds a NUL; text that does is kept as it is.
    if (shape.includes(NAME)) flags |= FLAG.plain;
    else shape = shape.split(name).join(NAME);
    r[at + OFF.flags] = flags;
    r[at + OFF.has] = has;
    r.writeUInt32LE(this.shapes.id(shape, shape), at + OFF.shape);
    const sorted = [...groups].sort();
    r.writeUInt32LE(this.groupSets.id(JSON.stringify(sorted), sorted), at + OFF.groups);
  }

  done(): Listing {
    const names = this.names;
    const order = Uint32Array.from(Array.from({ length: names.length }, (_, i) => i).sort((a, b) => (names[a]! < names[b]! ? -1 : names[a]! > names[b]! ? 1 : 0)));
    // Secret names are ASCII (the catalog reads no other): a byte a character.
    const text = Buffer.allocUnsafe(names.reduce((n, name) => n + name.length, 0));
    const ends = new Uint32Array(names.length);
    for (let i = 0, at = 0; i < order.length; i++) ends[i] = at += text.write(names[order[i]!]!, at, 'latin1');
    this.names = [];
    return this.make(this.serial, text, ends, this.chunks, order, this.shapes.values, this.groupSets.values, this.issuers.values);
  }
}

/**
 * The one listing in memory, shared by whoever reads the whole catalog (the inventory's pages,
 * the expiry metrics and warnings): read again when the catalog's serial moved past it, once
 * for all who wait. At 100,000s of secrets one copy is what fits rks's heap.
 */
export class Listings {
  private listing?: Listing;
  private building?: Promise<Listing>;
  /** The chunks of a listing let go of, for the next one built. */
  private spare?: Buffer[];

  constructor(private readonly catalog: Pick<Catalog, 'scan' | 'serial'>) {}

  /** The catalog as of its serial now (read with `token`). */
  async current(token: string): Promise<Listing> {
    const serial = await this.catalog.serial(token);
    for (;;) {
      if (this.listing && this.listing.serial >= serial) return this.listing;
      // Let go of the old one while the new one is read (its records are written over): two would not fit beside each other.
      const spare = this.listing?.release();
      this.listing = undefined;
      this.building ??= this.build(token, spare).finally(() => (this.building = undefined));
      this.listing = await this.building;
    }
  }

  /** The listing read last, without looking at the serial (none while one is being read). */
  last(): Listing | undefined {
    return this.listing;
  }

  /** Read again at the next look (repairs that do not move the serial). */
  forget(): void {
    this.spare = this.listing?.release();
    this.listing = undefined;
  }

  /** The serial first: a change made while the shards are read makes the next look read them again. */
  private async build(token: string, spare = this.spare): Promise<Listing> {
    this.spare = undefined;
    const serial = await this.catalog.serial(token);
    const builder = Listing.builder(serial, spare);
    await this.catalog.scan(token, (fqdn, e) => builder.add(fqdn, e));
    return builder.done();
  }
}
