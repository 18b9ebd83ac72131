import { X509Certificate, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Deadlines } from './deadlines';
import https from 'node:https';
import http from 'node:http';
import tls from 'node:tls';

/** A certificate and key held in memory, never on disk, until `expiresAt`. */
export interface NodeSecret {
  name: string;
  certificate: string;
  privateKey: string;
  /** Seconds the key is kept: the TTL rks gave, cut short by the certificate's own end. */
  ttl: number;
  expiresAt: number;
}

export interface RksNodeOptions {
  /** rks address, e.g. https://rks.example.com:8080 */
  url: string;
  /** The group token, or a function that reads the current one (a file that rotation rewrites). */
  groupToken: string | (() => string | Promise<string>);
  nodeId: string;
  /** PEM CA(s) that rks's certificate chains to (else the system CAs). */
  ca?: string | Buffer;
  /** Milliseconds for each request to rks. */
  timeoutMs?: number;
  /** Renew the node token when this fraction of its TTL has passed. */
  renewAt?: number;
  /** First and largest wait after a failure, in milliseconds. */
  backoffMs?: { min: number; max: number };
  /**
   * Milliseconds between asks to rks of what this node may still read (default 8000; 0: never).
   * Keys of names no longer allowed are dropped at once, and every key when the node token died
   * (node revoked, group token rotated, group deleted): with the request deadline, a key is
   * served at most about this long plus `timeoutMs` after such an action, while rks answers.
   */
  revalidateMs?: number;
  /**
   * Hand keys on rather than keep them (what an agent that loads them into HAProxy wants): the
   * node keeps of each name only when to fetch it again, and `secret()` fetches every time.
   * Its memory then stays small whatever the number of names.
   */
  handOff?: boolean;
}

/** Events: `registered`, `renewed`, `fetched`, `expired`, `refused`, `error` (see RksNode). */
export interface RksNodeEvents {
  registered: [{ ttl: number }];
  renewed: [{ ttl: number }];
  fetched: [{ name: string; ttl: number; ms: number }];
  expired: [{ name: string }];
  refused: [{ name: string; status: number }];
  /** A name this node may not serve was asked for (its handshake fails): `name` when it is a host name at all. */
  unserved: [{ name?: string }];
  /** Keys dropped because rks no longer lets this node have them. */
  revoked: [{ names: string[]; reason: string }];
  /** rks told a new list of the names this node may read (not sent when it answered "unchanged"). */
  allowed: [{ names: string[] }];
  /**
   * Names this node may no longer serve, whether or not it held their keys (`null`: every name,
   * the node token died). Whatever serves TLS with the node's keys drops what it holds of them.
   */
  withdrawn: [{ names: string[] | null }];
  /**
   * Keys rks replaced (a push over the name, an update, a rollback, a renewal), fetched anew
   * and swapped in: new handshakes get the new key. Whatever serves TLS with the node's keys
   * takes the new one.
   */
  replaced: [{ names: string[] }];
  error: [Error];
}

class HttpError extends Error {
  /** rks's stable error code; derived from the status for servers that send none (a classic RKS). */
  readonly code: string;

  constructor(
    readonly status: number,
    reason: string,
    code?: string,
  ) {
    super(`rks answered ${status}: ${reason}`);
    this.code = code ?? ({ 400: 'invalid_request', 403: 'forbidden', 404: 'not_found' } as Record<number, string>)[status] ?? 'unavailable';
  }
}

/** A host name as a TLS client may send it: letters, digits, hyphens (and underscores), dots, at most 253. */
const SERVER_NAME = /^(?=.{1,253}$)[a-z0-9_][a-z0-9_-]{0,62}(?:\.[a-z0-9_][a-z0-9_-]{0,62})*$/i;

/** Whether a client's server name (SNI), without its final dot, is a host name: nothing else is looked up. */
export function isServerName(name: string): boolean {
  return SERVER_NAME.test(name);
}

const ACME_TOKEN = /^[A-Za-z0-9_-]{16,128}$/;
/** A handshake for a name the node does not know refreshes the list at most this often. */
const MISS_REFRESH_MS = 2000;
/** Names whose failures are remembered at once (the oldest forgotten first). */
const MAX_FAILURES = 10_000;
/** Fetches in flight at once when rks cannot tell which names the node may read (a classic RKS). */
const MAX_BLIND_FETCHES = 32;
const MAX_CHALLENGE_FETCHES = 8;
/** The whole list is asked for this often, what changed in between. */
const WHOLE_LIST_EVERY_MS = 3600_000;
/** Replaced keys fetched anew at once. */
const REFETCH_CONCURRENCY = 8;
/** Answers to a key's fetch that mean this node may not have it (any more). */
const REFUSED_STATUS = new Set([403, 404, 410]);
/** Listings of the challenges in progress start at most this often. */
const CHALLENGE_LIST_EVERY_MS = 1000;
const ACME_PATH = /^\/\.well-known\/acme-challenge\/([^/]+)$/;

/** Answers that mean rks will not let this node have the key or register, not that rks is unwell. */
const REFUSED = new Set(['forbidden', 'callback_refused', 'node_revoked', 'invalid_request']);

interface Failure {
  until: number;
  delay: number;
  status?: number;
}

/**
 * An edge node of rks: registers with its group token, keeps its node token alive
 * (re-registering when it expired or was revoked), and fetches secrets on demand. Each key is
 * kept in memory for at most its TTL and dropped at expiry; concurrent fetches of one name
 * share one request; failures back off. `sniCallback` plugs it into `tls`/`https` servers.
 */
/**
 * How long a key handed on is left before it is fetched again, within its TTL. Names loaded
 * together are first fetched again at times spread over most of the TTL, then each at a steady
 * period of its own: the rate stays flat, with no burst a TTL after a load.
 */
export function handOffMs(ttlSeconds: number, reload: boolean): number {
  return ttlSeconds * 1000 * (reload ? 0.72 + Math.random() * 0.06 : 0.05 + Math.random() * 0.7);
}

export class RksNode extends EventEmitter<RksNodeEvents> {
  private readonly agent: https.Agent | http.Agent;
  private readonly base: URL;
  private token?: string;
  private registering?: Promise<void>;
  private renewTimer?: NodeJS.Timeout;
  private revalidateTimer?: NodeJS.Timeout;
  /** Names held: their key (none in hand-off mode), its TLS context once a handshake asked, and the end of their TTL. */
  private readonly cache = new Map<string, { secret?: NodeSecret; context?: tls.SecureContext; expiresAt: number }>();
  /** When each held key's time comes (one timer for all). */
  private readonly deadlines = new Deadlines((name, at) => this.due(name, at));
  private readonly inflight = new Map<string, Promise<NodeSecret | null>>();
  private readonly failures = new Map<string, Failure>();
  /** ACME HTTP-01 answers (and recent misses), each until its challenge ends. */
  private readonly challenges = new Map<string, { answer: string | null; until: number }>();
  private readonly challengeFetches = new Map<string, Promise<string | null>>();
  /** The last listing of the challenges in progress: when it leaves (or left) for rks. */
  private challengeList?: { at: number; sent: boolean; answers: Promise<Map<string, string> | null> };
  /** rks cannot list challenges (an older one): tokens are asked for one by one. */
  private challengesBlind = false;
  private stopped = false;
  private revalidating = false;
  /**
   * The names this node may read, as rks last said (GET /rks/v1/node/secrets): handshakes for
   * any other name are refused from memory, so a stranger's made-up names cost rks nothing.
   * Null until known; `blind` when rks cannot say (a classic RKS), and names are then asked for.
   */
  private allowed: { names: Set<string>; at: number; etag?: string } | null = null;
  /** Held keys rks said were replaced (or may have been): fetched anew at the next revalidation. */
  private readonly stale = new Set<string>();
  /** Handed on: names whose time came, until fetched again (see handOffMs). */
  private readonly reloads = new Set<string>();
  /** When the whole list was last asked for. */
  private wholeListAt = 0;
  /** Moves when rks says a name's key changed: a fetch that began before brings the old one. */
  private readonly generations = new Map<string, number>();
  private listing?: Promise<Set<string>>;
  private blind = false;
  /** When the node's list was last asked for, answered or not. */
  private listAskedAt = 0;
  /** The last refused registration: none is tried again before `until`. */
  private refusedRegistration?: { until: number; delay: number; error: Error };

  constructor(private readonly opts: RksNodeOptions) {
    super();
    this.base = new URL(opts.url);
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 32, ca: opts.ca })
        : new http.Agent({ keepAlive: true, maxSockets: 32 });
  }

  /**
   * A failure told to whoever listens ('error'). Nobody listening is no reason to end the
   * program: an edge whose rks restarts keeps serving its keys, listener or not.
   */
  private fail(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Registers the node; resolves once it holds a node token. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.register();
    await this.allowedNames().catch((err: Error) => this.fail(err));
    const every = this.opts.revalidateMs ?? 8000;
    if (every > 0) {
      clearInterval(this.revalidateTimer);
      this.revalidateTimer = setInterval(() => void this.revalidate(), every);
      this.revalidateTimer.unref();
    }
  }

  /**
   * Asks rks what this node may read now and drops the keys it may not; when the node token is
   * dead, drops every key and registers again (which fails if the group token was rotated or the
   * callback refuses the node). If rks cannot be reached, keys are kept until their TTL.
   */
  async revalidate(): Promise<void> {
    const token = this.token;
    if (this.stopped || this.revalidating) return;
    if (!token) return this.registerAgain();
    this.revalidating = true;
    try {
      const allowed = await this.allowedNames(token);
      if (!this.blind) this.dropAll((name) => !allowed.has(name), 'no longer allowed to this node');
      await this.refetchStale();
    } catch (err) {
      if (this.stopped) return; // stopped meanwhile: nobody listens any more
      if (!(err instanceof HttpError && err.code === 'forbidden')) {
        this.fail(err as Error);
        return;
      }
      this.tokenDied(token);
      // Refused (rotated group token, deleted group, callback says no): already told by 'revoked'.
      await this.registerOrForget().catch((e: Error) => {
        if (!(e instanceof HttpError && REFUSED.has(e.code))) this.fail(e);
      });
    } finally {
      this.revalidating = false;
    }
  }

  /**
   * A node whose registration was refused (a rotated group token) tries again at its
   * revalidations, within the refusal's backoff: a rewritten token file brings it back even
   * when no handshake asks for a key (HAProxy, loaded up front).
   */
  private async registerAgain(): Promise<void> {
    const refused = this.refusedRegistration;
    if (refused && refused.until > Date.now()) return;
    this.revalidating = true;
    try {
      await this.registerOrForget();
      await this.allowedNames();
    } catch (err) {
      if (!this.stopped && !(err instanceof HttpError && REFUSED.has(err.code))) this.fail(err as Error);
    } finally {
      this.revalidating = false;
    }
  }

  /**
   * The node token is dead (revoked, its group token rotated, or expired while rks was away):
   * no key fetched with it is served any longer, whatever registering again brings.
   */
  private tokenDied(token: string): void {
    if (this.token === token) this.token = undefined;
    this.dropAll(() => true, 'the node token is no longer valid');
    this.emit('withdrawn', { names: null });
  }

  private dropAll(which: (name: string) => boolean, reason: string): void {
    const names = [...this.cache.keys()].filter(which);
    for (const name of names) this.drop(name, false);
    if (names.length) this.emit('revoked', { names, reason });
  }

  /** Forgets every key and token and stops all timers. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    clearInterval(this.revalidateTimer);
    for (const name of [...this.cache.keys()]) this.drop(name, false);
    this.deadlines.clear();
    this.challenges.clear();
    this.challengeList = undefined;
    this.allowed = null;
    this.token = undefined;
    this.agent.destroy();
  }

  /**
   * The names this node may read, as rks last said (asked now when not known yet); null when
   * rks cannot list them (a classic RKS).
   */
  async allowedNow(): Promise<string[] | null> {
    const names = this.allowed?.names ?? (await this.allowedNames());
    return this.blind ? null : [...names];
  }

  /** Whether rks, as last heard, lets this node serve `name` (always, when rks cannot say). */
  allows(name: string): boolean {
    return this.blind || Boolean(this.allowed?.names.has(name));
  }

  /** Names currently held in memory. */
  cached(): string[] {
    return [...this.cache.keys()];
  }

  /**
   * The names this node may read, asked of rks by one request however many callers wait
   * (with `token`, that token's answer: a revalidation). A server that cannot say (404: a
   * classic RKS) makes the node blind: it then asks for names one by one, within bounds.
   */
  private allowedNames(token?: string): Promise<Set<string>> {
    if (this.listing && !token) return this.listing;
    this.listAskedAt = Date.now();
    const listing = (async () => {
      try {
        // Up to date: 304 and no body, however many names the group has.
        const held = this.allowed;
        // With what it holds: rks then tells what changed since, not the whole list (but once an
        // hour, the whole list: whatever a change told out of order left, it puts right).
        const whole = !held || Date.now() - this.wholeListAt >= WHOLE_LIST_EVERY_MS;
        const ask = (t: string) =>
          whole ? this.exchange('GET', '/rks/v1/node/secrets', t) : this.exchange('GET', '/rks/v1/node/secrets?changes=true', t, held?.etag ? { 'If-None-Match': held.etag } : {});
        const answer = await (token ? ask(token) : this.withToken(ask, false));
        const etag = typeof answer.headers.etag === 'string' ? answer.headers.etag : undefined;
        const body = answer.body as { secrets?: string[]; changes?: { added: string[]; removed: string[]; replaced: string[] }; stale?: boolean } | null;
        if (whole) this.wholeListAt = Date.now();
        let names: Set<string>;
        if (answer.status === 304 && held) names = held.names;
        else if (body?.changes && held) {
          const { added, removed, replaced } = body.changes;
          names = new Set(held.names);
          for (const n of removed) names.delete(n);
          for (const n of added) names.add(n);
          // Listed again or with another key: a key held (or on its way) from before is not the one rks has now.
          for (const n of [...added, ...replaced]) this.keyChanged(n);
        } else {
          names = new Set(body?.secrets ?? []);
          // Further behind than rks remembers: any key held may have been replaced meanwhile.
          if (body?.stale) for (const n of [...this.cache.keys(), ...this.inflight.keys()]) this.keyChanged(n);
        }
        this.allowed = { names, at: Date.now(), ...(etag ? { etag } : {}) };
        this.blind = false;
        if (answer.status !== 304) {
          const lost = held ? [...held.names].filter((n) => !names.has(n)) : [];
          if (lost.length) this.emit('withdrawn', { names: lost });
          this.emit('allowed', { names: [...names] });
        }
        return names;
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404)) throw err;
        this.blind = true;
        return new Set<string>();
      }
    })();
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
  private async permitted(candidates: string[]): Promise<string[]> {
    if (this.blind) return candidates;
    const known = this.allowed;
    let hits = known ? candidates.filter((c) => known.names.has(c)) : [];
    if (hits.length) return hits;
    // A listing in flight is waited for (the first above all: an edge takes handshakes while it
    // registers); one asked for recently, answered or not, stands (rks failing is no reason to
    // ask faster).
    if (!this.listing && Date.now() - Math.max(known?.at ?? 0, this.listAskedAt) < MISS_REFRESH_MS) return hits;
    try {
      const names = await this.allowedNames();
      hits = this.blind ? candidates : candidates.filter((c) => names.has(c));
    } catch {
      // rks unreachable: the names known before, as they were (the revalidation reports it).
    }
    return hits;
  }

  /**
   * The secret for a server name: the exact name, else a wildcard `*.parent` matching exactly
   * one label. Null when the group may not read either (or rks cannot be reached). Only names
   * rks listed for this node are asked for.
   */
  async secretFor(servername: string): Promise<NodeSecret | null> {
    const name = servername.toLowerCase().replace(/\.$/, '');
    if (!isServerName(name)) {
      this.emit('unserved', {});
      return null;
    }
    const labels = name.split('.');
    const candidates = await this.permitted(labels.length > 2 ? [name, `*.${labels.slice(1).join('.')}`] : [name]);
    if (!candidates.length) this.emit('unserved', { name });
    for (const candidate of candidates) {
      const secret = await this.secret(candidate);
      if (secret) return secret;
    }
    return null;
  }

  /** A SecureContext for a server name, or null; for `tls.createServer({ SNICallback })`. */
  async contextFor(servername: string): Promise<tls.SecureContext | null> {
    const secret = await this.secretFor(servername);
    return secret ? this.contextOf(secret) : null;
  }

  /** The TLS context of a held key, made at its first handshake (a key only handed on needs none). */
  private contextOf(secret: NodeSecret): tls.SecureContext {
    const held = this.cache.get(secret.name);
    if (held?.secret === secret) return (held.context ??= tls.createSecureContext({ cert: secret.certificate, key: secret.privateKey }));
    return tls.createSecureContext({ cert: secret.certificate, key: secret.privateKey });
  }

  /**
   * Makes `server` follow what rks allows: whenever names are withdrawn (or a name is refused),
   * its session-ticket keys change, so no client resumes a session (which skips the SNI
   * callback) for a name this node may no longer serve, and its open connections for those
   * names end. Sessions of names still allowed start over with one full handshake.
   */
  protect(server: tls.Server): void {
    const open = new Set<tls.TLSSocket>();
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
    });
    const rotate = () => server.setTicketKeys(randomBytes(48));
    this.on('refused', rotate);
    // A replaced key (a compromised one, say): no session resumes what the old one began.
    this.on('replaced', rotate);
    this.on('withdrawn', ({ names }) => {
      rotate();
      // Connections kept alive for a withdrawn name end too (a client reconnects, and is asked again).
      const gone = names && new Set(names);
      for (const socket of open) {
        const sni = typeof socket.servername === 'string' ? socket.servername.toLowerCase().replace(/\.$/, '') : '';
        const labels = sni.split('.');
        if (!gone || gone.has(sni) || (labels.length > 2 && gone.has(`*.${labels.slice(1).join('.')}`))) socket.destroy();
      }
    });
  }

  /** `SNICallback` for `tls.createServer` / `https.createServer`: unknown names fail the handshake. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    // A name held and listed: answered at once, as the lookup below would, without its promises.
    const held = this.cache.get(servername.toLowerCase());
    if (held?.secret && held.expiresAt > Date.now() && !this.blind && this.allowed?.names.has(held.secret.name)) return cb(null, this.contextOf(held.secret));
    this.contextFor(servername).then(
      (ctx) => (ctx ? cb(null, ctx) : cb(new Error(`no certificate for ${servername}`))),
      (err: Error) => cb(err),
    );
  };

  /**
   * The key authorisation to answer an ACME HTTP-01 challenge with, asked of rks (which orders
   * certificates for the names this edge serves), or null when no order waits on that token.
   */
  async acmeChallenge(token: string): Promise<string | null> {
    if (!ACME_TOKEN.test(token)) return null;
    const held = this.challenges.get(token);
    if (held && held.until > Date.now()) return held.answer;
    if (!this.challengesBlind) {
      const answers = await this.challengesListedFromNow();
      if (answers) return answers.get(token) ?? null;
    }
    let pending = this.challengeFetches.get(token);
    // Anyone can knock on port 80 with made-up tokens: at most a few questions to rks at once.
    if (!pending && this.challengeFetches.size >= MAX_CHALLENGE_FETCHES) return null;
    if (!pending) {
      pending = this.fetchChallenge(token).finally(() => this.challengeFetches.delete(token));
      this.challengeFetches.set(token, pending);
    }
    return pending;
  }

  /**
   * A request listener for the edge's plain-HTTP port (80, where ACME CAs validate):
   * answers `/.well-known/acme-challenge/<token>` and hands every other request to `next`
   * (404 without one).
   */
  readonly httpHandler = (req: http.IncomingMessage, res: http.ServerResponse, next?: () => void): void => {
    const token = ACME_PATH.exec((req.url ?? '').split('?')[0])?.[1];
    if (!token || (req.method !== 'GET' && req.method !== 'HEAD')) {
      if (next) return next();
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    this.acmeChallenge(token).then(
      (answer) => {
        if (answer === null) res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('no such challenge\n');
        else res.writeHead(200, { 'Content-Type': 'text/plain' }).end(answer);
      },
      () => res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '2' }).end('rks unreachable\n'),
    );
  };

  /**
   * Every challenge in progress, from a listing sent after this call: a token unknown a moment
   * ago (the CA fetches right after rks published it) is looked for afresh. Listings start at
   * most once a second, shared by every request waiting for one not yet sent, so a stranger's
   * made-up tokens cost rks at most one request a second, and the CA's own fetch waits at most
   * about that long. Null when rks cannot list them.
   */
  private challengesListedFromNow(): Promise<Map<string, string> | null> {
    const last = this.challengeList;
    // Sent already: it may have left before the caller's token was published.
    if (last && !last.sent) return last.answers;
    const at = Math.max(Date.now(), (last?.at ?? 0) + CHALLENGE_LIST_EVERY_MS);
    const list: NonNullable<typeof this.challengeList> = { at, sent: false, answers: Promise.resolve(null) };
    list.answers = new Promise<void>((r) => setTimeout(r, Math.max(0, at - Date.now())).unref()).then(() => {
      // Timers may fire early by Date.now()'s clock: the next listing counts from when this one left.
      Object.assign(list, { at: Date.now(), sent: true });
      return this.listChallenges();
    });
    this.challengeList = list;
    return list.answers;
  }

  private async listChallenges(): Promise<Map<string, string> | null> {
    try {
      const body = (await this.withToken((t) => this.call('GET', '/rks/v1/acme/http-01', t), true)) as { challenges: { token: string; keyAuthorization: string; expiresAt: string }[] };
      const answers = new Map<string, string>();
      for (const c of body.challenges) {
        answers.set(c.token, c.keyAuthorization);
        if (this.challenges.size >= 1024) this.challenges.delete(this.challenges.keys().next().value!);
        this.challenges.set(c.token, { answer: c.keyAuthorization, until: Math.min(Date.parse(c.expiresAt) || 0, Date.now() + 3600_000) });
      }
      return answers;
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) {
        this.challengesBlind = true;
        return null;
      }
      throw err;
    }
  }

  private async fetchChallenge(token: string): Promise<string | null> {
    let answer: string | null = null;
    let until = Date.now() + 5000; // a miss is remembered briefly: strangers may knock here
    try {
      const body = (await this.withToken((t) => this.call('GET', `/rks/v1/acme/http-01/${token}`, t), true)) as { keyAuthorization: string; expiresAt: string };
      answer = body.keyAuthorization;
      until = Math.min(Date.parse(body.expiresAt) || 0, Date.now() + 3600_000);
    } catch (err) {
      if (!(err instanceof HttpError && err.code === 'not_found')) throw err;
    }
    if (this.challenges.size >= 1024) this.challenges.delete(this.challenges.keys().next().value!);
    this.challenges.set(token, { answer, until });
    return answer;
  }

  /** One name, exactly as stored in rks (`www.example.com`, `*.example.com`). */
  async secret(name: string): Promise<NodeSecret | null> {
    const held = this.cache.get(name);
    if (held?.secret && held.expiresAt > Date.now()) return held.secret;
    if (held && held.expiresAt <= Date.now()) this.drop(name, true);
    const failed = this.failures.get(name);
    if (failed && failed.until > Date.now()) return null;
    let pending = this.inflight.get(name);
    if (!pending && this.blind && this.inflight.size >= MAX_BLIND_FETCHES) return null;
    if (!pending) {
      pending = this.fetch(name).finally(() => this.inflight.delete(name));
      this.inflight.set(name, pending);
    }
    return pending;
  }

  private async fetch(name: string, again = true): Promise<NodeSecret | null> {
    const started = Date.now();
    const generation = this.generations.get(name);
    try {
      const body = await this.withToken((token) => this.call('GET', `/rks/v1/secret/${encodeURIComponent(name)}`, token), true);
      // rks said the key changed while this fetch was on its way: it may bring the old one.
      if (again && this.generations.get(name) !== generation) return this.fetch(name, false);
      const data = (body as { data: { certificate: string; private_key: string; meta: { ttl: number } } }).data;
      // Kept for its TTL, and never past the certificate's own end.
      const notAfter = Date.parse(new X509Certificate(data.certificate).validTo);
      if (!Number.isFinite(notAfter)) throw new Error(`the certificate of ${name} has no end date this node can read`);
      const ttl = Math.max(1, Math.min(Number(data.meta?.ttl) || 1, Math.floor((notAfter - Date.now()) / 1000)));
      const secret: NodeSecret = { name, certificate: data.certificate, privateKey: data.private_key, ttl, expiresAt: Date.now() + ttl * 1000 };
      const expiresAt = Date.now() + (this.opts.handOff ? handOffMs(ttl, this.reloads.delete(name)) : ttl * 1000);
      // A key fetched anew takes the place of the one held: new handshakes get it.
      this.cache.set(name, { ...(this.opts.handOff ? {} : { secret }), expiresAt });
      this.deadlines.add(name, expiresAt);
      // Deadlines of keys fetched anew stay in the heap until their time: not more than the keys.
      if (this.deadlines.size > 2 * this.cache.size + 1024) this.deadlines.keep((n, at) => this.cache.get(n)?.expiresAt === at);
      this.failures.delete(name);
      this.emit('fetched', { name, ttl, ms: Date.now() - started });
      return secret;
    } catch (err) {
      // Fetched again later as a first load, not as a reload that is due.
      this.reloads.delete(name);
      const status = err instanceof HttpError ? err.status : undefined;
      if (err instanceof HttpError && ['forbidden', 'not_found', 'certificate_expired'].includes(err.code)) this.emit('refused', { name, status: err.status });
      else this.fail(err as Error);
      this.backoff(name, status);
      return null;
    }
  }

  private keyChanged(name: string): void {
    if (!this.cache.has(name) && !this.inflight.has(name)) return;
    this.generations.set(name, (this.generations.get(name) ?? 0) + 1);
    if (this.generations.size > MAX_FAILURES) this.generations.delete(this.generations.keys().next().value!);
    if (this.cache.has(name)) this.stale.add(name);
  }

  /**
   * Fetches anew the held keys rks replaced, a few at a time, and swaps each in as it comes: a
   * name refused now goes; one rks cannot give now (unreachable) keeps its key until its TTL
   * and is tried again at the next revalidation.
   */
  private async refetchStale(): Promise<void> {
    const names = [...this.stale].filter((n) => this.cache.has(n) && (this.blind || this.allowed?.names.has(n)));
    this.stale.clear();
    // Handed on: whoever holds the keys fetches them again.
    if (this.opts.handOff) {
      if (names.length) this.emit('replaced', { names: names.sort() });
      return;
    }
    const swapped: string[] = [];
    const queue = [...names];
    await Promise.all(
      Array.from({ length: Math.min(REFETCH_CONCURRENCY, queue.length) }, async () => {
        for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
          this.failures.delete(name);
          const secret = await this.fetch(name);
          if (secret) swapped.push(name);
          else if (REFUSED_STATUS.has(this.failures.get(name)?.status ?? 0)) this.dropAll((n) => n === name, 'rks no longer gives it to this node');
          else if (this.cache.has(name)) this.stale.add(name);
        }
      }),
    );
    if (swapped.length) this.emit('replaced', { names: swapped.sort() });
  }

  private drop(name: string, announce: boolean): void {
    if (!this.cache.delete(name)) return;
    if (announce) this.emit('expired', { name });
  }

  /** A deadline came: the key's, if it still holds that one (not fetched anew or dropped since). */
  private due(name: string, at: number): void {
    if (this.cache.get(name)?.expiresAt !== at) return;
    if (this.opts.handOff) this.reloads.add(name);
    this.drop(name, true);
  }

  private backoff(name: string, status?: number): void {
    const { min, max } = this.opts.backoffMs ?? { min: 1000, max: 60_000 };
    const previous = this.failures.get(name);
    const delay = previous ? Math.min(previous.delay * 2, max) : min;
    this.failures.delete(name);
    if (this.failures.size >= MAX_FAILURES) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(name, { until: Date.now() + delay, delay, status });
  }

  /**
   * Runs `fn` with the node token. A 403 may mean the token died (revoked, or expired while
   * rks was away): the token is checked, and if it is gone the node registers again and
   * `fn` runs once more.
   */
  private async withToken<T>(fn: (token: string) => Promise<T>, retry: boolean): Promise<T> {
    if (!this.token) await this.register();
    const token = this.token!;
    try {
      return await fn(token);
    } catch (err) {
      if (!retry || !(err instanceof HttpError) || err.code !== 'forbidden') throw err;
      if (await this.tokenAlive(token)) throw err;
      this.tokenDied(token);
      await this.registerOrForget();
      return fn(this.token!);
    }
  }

  private async tokenAlive(token: string): Promise<boolean> {
    try {
      await this.renew(token);
      return true;
    } catch (err) {
      if (err instanceof HttpError && err.code === 'forbidden') return false;
      throw err;
    }
  }

  /** Registers again; if rks refuses the node, no key it holds may be served any longer. */
  private async registerOrForget(): Promise<void> {
    try {
      await this.register();
    } catch (err) {
      if (err instanceof HttpError && REFUSED.has(err.code)) {
        this.dropAll(() => true, 'rks refused to register this node');
        this.emit('withdrawn', { names: null });
      }
      throw err;
    }
  }

  /**
   * Registers, once at a time. After a refusal (rotated group token, deleted group, callback
   * saying no) the next try waits, doubling up to `backoffMs.max`: a stranger's handshakes with
   * an edge that lost its registration must not turn into registrations (and, on rks, calls to
   * the group manager) as fast as they come.
   */
  private register(): Promise<void> {
    const refused = this.refusedRegistration;
    if (refused && refused.until > Date.now()) return Promise.reject(refused.error);
    this.registering ??= (async () => {
      const groupToken = typeof this.opts.groupToken === 'function' ? (await this.opts.groupToken()).trim() : this.opts.groupToken;
      try {
        const body = (await this.call('POST', '/rks/v1/node', groupToken, { 'X-LCDN-nodeId': this.opts.nodeId })) as {
          nodeToken: string;
          ttl: number;
        };
        this.refusedRegistration = undefined;
        this.token = body.nodeToken;
        this.scheduleRenewal(body.ttl);
        this.emit('registered', { ttl: body.ttl });
      } catch (err) {
        if (err instanceof HttpError && REFUSED.has(err.code)) {
          const { min, max } = this.opts.backoffMs ?? { min: 1000, max: 60_000 };
          const delay = refused ? Math.min(refused.delay * 2, max) : min;
          this.refusedRegistration = { until: Date.now() + delay, delay, error: err };
        }
        throw err;
      }
    })().finally(() => (this.registering = undefined));
    return this.registering;
  }

  private async renew(token: string): Promise<number> {
    const body = (await this.call('POST', '/rks/v1/auth/token/renew-self', token)) as { ttl: number };
    if (token === this.token) this.scheduleRenewal(body.ttl);
    return body.ttl;
  }

  private scheduleRenewal(ttl: number, delayMs?: number): void {
    if (this.stopped) return;
    clearTimeout(this.renewTimer);
    const wait = delayMs ?? Math.max(1000, ttl * 1000 * (this.opts.renewAt ?? 2 / 3));
    this.renewTimer = setTimeout(() => void this.renewOrRegister(ttl), wait);
    this.renewTimer.unref();
  }

  private async renewOrRegister(ttl: number): Promise<void> {
    try {
      if (this.token) {
        const next = await this.renew(this.token);
        this.emit('renewed', { ttl: next });
        return;
      }
      await this.register();
    } catch (err) {
      if (err instanceof HttpError && err.code === 'forbidden') {
        if (this.token) this.tokenDied(this.token);
        try {
          await this.registerOrForget();
          return;
        } catch (again) {
          this.fail(again as Error);
        }
      } else {
        this.fail(err as Error);
      }
      // rks or Vault unreachable: try again soon, well before the token can run out.
      const { min, max } = this.opts.backoffMs ?? { min: 1000, max: 60_000 };
      this.scheduleRenewal(ttl, Math.min(max, Math.max(min, (ttl * 1000) / 10)));
    }
  }

  private async call(method: string, path: string, token: string, headers: Record<string, string> = {}): Promise<unknown> {
    return (await this.exchange(method, path, token, headers)).body;
  }

  /** One request to rks: its status, headers and parsed body; an error status rejects with HttpError. */
  private exchange(method: string, path: string, token: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: unknown }> {
    const lib = this.base.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(
        new URL(path, this.base),
        { method, agent: this.agent, timeout: this.opts.timeoutMs ?? 5000, headers: { 'X-Vault-Token': token, ...headers } },
        (res) => {
          let raw = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (raw += c));
          res.on('end', () => {
            let body: unknown = null;
            try {
              body = raw ? JSON.parse(raw) : null;
            } catch {
              /* not JSON */
            }
            if (res.statusCode! >= 400) {
              const answer = body as { errors?: string[]; code?: string } | null;
              reject(new HttpError(res.statusCode!, answer?.errors?.join('; ') ?? 'no reason given', answer?.code));
            } else resolve({ status: res.statusCode!, headers: res.headers, body });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`rks did not answer within ${this.opts.timeoutMs ?? 5000} ms`)));
      req.on('error', reject);
      req.end();
    });
  }
}
