import type { Tell } from './events';
import { Answer, HttpError } from './transport';
import type { NodeAccess } from './wire';

/** A handshake for a name the node does not know refreshes the list at most this often. */
const MISS_REFRESH_MS = 2000;
/** The whole list is asked for this often, what changed in between. */
const WHOLE_LIST_EVERY_MS = 3600_000;

/** What the list tells the keys. */
export interface ListHooks {
  /** rks said `name`'s key changed (listed again, or with another key). */
  changed(name: string): void;
  /** rks cannot say what changed since the list held: any key may have been replaced. */
  allChanged(): void;
}

/**
 * The names this node may read, as rks last said (GET /rks/v1/node/secrets): handshakes for
 * any other name are refused from memory, so a stranger's made-up names cost rks nothing.
 * Null until known; `blind` when rks cannot say (a classic RKS), and names are then asked for.
 */
export class AllowedList {
  private allowed: { names: Set<string>; at: number; etag?: string } | null = null;
  private listing?: Promise<Set<string>>;
  private isBlind = false;
  /** When the whole list was last asked for. */
  private wholeListAt = 0;
  /** When the node's list was last asked for, answered or not. */
  private listAskedAt = 0;

  /** `ask(path, headers, token)`: a GET to rks, with `token` or else the node's own. */
  constructor(
    private readonly ask: (path: string, headers: Record<string, string>, token?: string) => Promise<Answer>,
    private readonly hooks: ListHooks,
    private readonly tell: Tell,
  ) {}

  /** rks cannot say which names this node may read (a classic RKS). */
  get blind(): boolean {
    return this.isBlind;
  }

  /** Whether rks, as last heard, lets this node serve `name` (always, when rks cannot say). */
  allows(name: string): boolean {
    return this.isBlind || Boolean(this.allowed?.names.has(name));
  }

  /** Whether rks listed `name` for this node (never, when rks cannot say). */
  lists(name: string): boolean {
    return !this.isBlind && Boolean(this.allowed?.names.has(name));
  }

  /** The names, as rks last said (asked now when not known yet); null when rks cannot list them. */
  async now(): Promise<string[] | null> {
    const names = this.allowed?.names ?? (await this.names());
    return this.isBlind ? null : [...names];
  }

  forget(): void {
    this.allowed = null;
  }

  /**
   * The names this node may read, asked of rks by one request however many callers wait
   * (with `token`, that token's answer: a revalidation). A server that cannot say (404: a
   * classic RKS) makes the node blind: it then asks for names one by one, within bounds.
   */
  names(token?: string): Promise<Set<string>> {
    if (this.listing && !token) return this.listing;
    this.listAskedAt = Date.now();
    const listing = this.list(token).catch((err) => {
      if (!(err instanceof HttpError && err.status === 404)) throw err;
      this.isBlind = true;
      return new Set<string>();
    });
    const done = listing.finally(() => {
      if (this.listing === done) this.listing = undefined;
    });
    this.listing = done;
    return done;
  }

  /**
   * Which of `candidates` the node may read, from what it knows. A name it does not know
   * refreshes the list, at most once every MISS_REFRESH_MS for all names together: a flood of
   * made-up names costs rks a request every few seconds at most, not one a name.
   */
  async permitted(candidates: string[]): Promise<string[]> {
    if (this.isBlind) return candidates;
    const known = this.allowed;
    let hits = known ? candidates.filter((c) => known.names.has(c)) : [];
    if (hits.length) return hits;
    // A listing in flight is waited for (the first above all: an edge takes handshakes while it
    // registers); one asked for recently, answered or not, stands (rks failing is no reason to
    // ask faster).
    if (!this.listing && Date.now() - Math.max(known?.at ?? 0, this.listAskedAt) < MISS_REFRESH_MS) return hits;
    try {
      const names = await this.names();
      hits = this.isBlind ? candidates : candidates.filter((c) => names.has(c));
    } catch {
      // rks unreachable: the names known before, as they were (the revalidation reports it).
    }
    return hits;
  }

  /** Up to date: 304 and no body, however many names the group has; behind: what changed since. */
  private async list(token?: string): Promise<Set<string>> {
    const held = this.allowed;
    // With what it holds: rks then tells what changed since, not the whole list (but once an
    // hour, the whole list: whatever a change told out of order left, it puts right).
    const whole = !held || Date.now() - this.wholeListAt >= WHOLE_LIST_EVERY_MS;
    const answer = whole ? await this.ask('/rks/v1/node/secrets', {}, token) : await this.ask('/rks/v1/node/secrets?changes=true', held?.etag ? { 'If-None-Match': held.etag } : {}, token);
    const etag = typeof answer.headers.etag === 'string' ? answer.headers.etag : undefined;
    const body = answer.body as Partial<NodeAccess> | null;
    if (whole) this.wholeListAt = Date.now();
    let names: Set<string>;
    if (answer.status === 304 && held) names = held.names;
    else if (body?.changes && held) {
      const { added, removed, replaced } = body.changes;
      names = new Set(held.names);
      for (const n of removed) names.delete(n);
      for (const n of added) names.add(n);
      // Listed again or with another key: a key held (or on its way) from before is not the one rks has now.
      for (const n of [...added, ...replaced]) this.hooks.changed(n);
    } else {
      names = new Set(body?.secrets ?? []);
      // Further behind than rks remembers: any key held may have been replaced meanwhile.
      if (body?.stale) this.hooks.allChanged();
    }
    this.allowed = { names, at: Date.now(), ...(etag ? { etag } : {}) };
    this.isBlind = false;
    if (answer.status !== 304) {
      const lost = held ? [...held.names].filter((n) => !names.has(n)) : [];
      if (lost.length) this.tell('withdrawn', { names: lost });
      this.tell('allowed', { names: [...names] });
    }
    return names;
  }
}
