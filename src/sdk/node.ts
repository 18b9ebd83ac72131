import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import tls from 'node:tls';
import { AllowedList } from './allowed';
import { ChallengeAnswers } from './challenges';
import type { RksNodeEvents, Tell } from './events';
import type { NodeSecret } from './held';
import { Keys } from './keys';
import { NodeSession } from './session';
import { HttpError, REFUSED, Transport } from './transport';

export type { NodeSecret } from './held';
export type { RksNodeEvents } from './events';

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

/** A host name as a TLS client may send it: letters, digits, hyphens (and underscores), dots, at most 253. */
const SERVER_NAME = /^(?=.{1,253}$)[a-z0-9_][a-z0-9_-]{0,62}(?:\.[a-z0-9_][a-z0-9_-]{0,62})*$/i;

/** Whether a client's server name (SNI), without its final dot, is a host name: nothing else is looked up. */
export function isServerName(name: string): boolean {
  return SERVER_NAME.test(name);
}

/**
 * An edge node of rks: registers with its group token, keeps its node token alive
 * (re-registering when it expired or was revoked), and fetches secrets on demand. Each key is
 * kept in memory for at most its TTL and dropped at expiry; concurrent fetches of one name
 * share one request; failures back off. `sniCallback` plugs it into `tls`/`https` servers.
 *
 * Its parts: the transport (requests to rks), the session (the node token), the list (what
 * the node may read), the keys (fetched, held, replaced) and the ACME answers.
 */
export class RksNode extends EventEmitter<RksNodeEvents> {
  private readonly transport: Transport;
  private readonly session: NodeSession;
  private readonly list: AllowedList;
  private readonly keys: Keys;
  private readonly challenges: ChallengeAnswers;
  private revalidateTimer?: NodeJS.Timeout;
  /** Tells the listeners; a failure only to whoever listens (see Tell). */
  private readonly tell: Tell = (event, ...args) => {
    if (event !== 'error' || this.listenerCount('error') > 0) (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
  };
  private stopped = false;
  private revalidating = false;

  constructor(private readonly opts: RksNodeOptions) {
    super();
    const tell = this.tell;
    this.transport = new Transport(opts.url, opts.timeoutMs ?? 5000, opts.ca);
    this.session = new NodeSession(this.transport, opts, tell, {
      died: () => {
        this.keys.revoke(() => true, 'the node token is no longer valid');
        this.emit('withdrawn', { names: null });
      },
      refused: () => {
        this.keys.revoke(() => true, 'rks refused to register this node');
        this.emit('withdrawn', { names: null });
      },
    });
    const get = <T>(path: string) => this.session.withToken((t) => this.transport.call<T>('GET', path, t), true);
    this.list = new AllowedList(
      (path, headers, token) => (token ? this.transport.exchange('GET', path, token, headers) : this.session.withToken((t) => this.transport.exchange('GET', path, t, headers), false)),
      { changed: (name) => this.keys.changed(name), allChanged: () => this.keys.allChanged() },
      tell,
    );
    this.keys = new Keys(get, this.list, opts, tell);
    this.challenges = new ChallengeAnswers(get);
  }

  /** Registers the node; resolves once it holds a node token. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.session.start();
    await this.list.names().catch((err: Error) => this.tell('error', err));
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
    const token = this.session.current;
    if (this.stopped || this.revalidating) return;
    if (!token) return this.registerAgain();
    this.revalidating = true;
    try {
      const allowed = await this.list.names(token);
      if (!this.list.blind) this.keys.revoke((name) => !allowed.has(name), 'no longer allowed to this node');
      await this.keys.refetchStale();
    } catch (err) {
      if (this.stopped) return; // stopped meanwhile: nobody listens any more
      if (!(err instanceof HttpError && err.code === 'forbidden')) {
        this.tell('error', err as Error);
        return;
      }
      this.session.died(token);
      // Refused (rotated group token, deleted group, callback says no): already told by 'revoked'.
      await this.session.registerOrForget().catch((e: Error) => {
        if (!(e instanceof HttpError && REFUSED.has(e.code))) this.tell('error', e);
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
    if (this.session.barred) return;
    this.revalidating = true;
    try {
      await this.session.registerOrForget();
      await this.list.names();
    } catch (err) {
      if (!this.stopped && !(err instanceof HttpError && REFUSED.has(err.code))) this.tell('error', err as Error);
    } finally {
      this.revalidating = false;
    }
  }

  /** Forgets every key and token and stops all timers. */
  stop(): void {
    this.stopped = true;
    this.session.stop();
    clearInterval(this.revalidateTimer);
    this.keys.clear();
    this.challenges.clear();
    this.list.forget();
    this.transport.close();
  }

  /**
   * The names this node may read, as rks last said (asked now when not known yet); null when
   * rks cannot list them (a classic RKS).
   */
  allowedNow(): Promise<string[] | null> {
    return this.list.now();
  }

  /** Whether rks, as last heard, lets this node serve `name` (always, when rks cannot say). */
  allows(name: string): boolean {
    return this.list.allows(name);
  }

  /** Names currently held in memory. */
  cached(): string[] {
    return this.keys.held.names();
  }

  /** One name, exactly as stored in rks (`www.example.com`, `*.example.com`). */
  secret(name: string): Promise<NodeSecret | null> {
    return this.keys.secret(name);
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
    const candidates = await this.list.permitted(labels.length > 2 ? [name, `*.${labels.slice(1).join('.')}`] : [name]);
    if (!candidates.length) this.emit('unserved', { name });
    for (const candidate of candidates) {
      const secret = await this.keys.secret(candidate);
      if (secret) return secret;
    }
    return null;
  }

  /** A SecureContext for a server name, or null; for `tls.createServer({ SNICallback })`. */
  async contextFor(servername: string): Promise<tls.SecureContext | null> {
    const secret = await this.secretFor(servername);
    return secret ? this.keys.held.context(secret) : null;
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
    const held = this.keys.held.key(servername.toLowerCase());
    if (held && this.list.lists(held.name)) return cb(null, this.keys.held.context(held));
    this.contextFor(servername).then(
      (ctx) => (ctx ? cb(null, ctx) : cb(new Error(`no certificate for ${servername}`))),
      (err: Error) => cb(err),
    );
  };

  /**
   * The key authorisation to answer an ACME HTTP-01 challenge with, asked of rks (which orders
   * certificates for the names this edge serves), or null when no order waits on that token.
   */
  acmeChallenge(token: string): Promise<string | null> {
    return this.challenges.answer(token);
  }

  /**
   * A request listener for the edge's plain-HTTP port (80, where ACME CAs validate):
   * answers `/.well-known/acme-challenge/<token>` and hands every other request to `next`
   * (404 without one).
   */
  readonly httpHandler = (req: http.IncomingMessage, res: http.ServerResponse, next?: () => void): void => this.challenges.handle(req, res, next);
}
