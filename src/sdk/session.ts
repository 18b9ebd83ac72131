import type { Tell } from './events';
import { HttpError, REFUSED, Transport } from './transport';
import type { NodeToken } from './wire';

export interface SessionOptions {
  /** The group token, or a function that reads the current one (a file that rotation rewrites). */
  groupToken: string | (() => string | Promise<string>);
  nodeId: string;
  /** Renew the node token when this fraction of its TTL has passed. */
  renewAt?: number;
  /** First and largest wait after a failure, in milliseconds. */
  backoffMs?: { min: number; max: number };
}

/** What the session tells the node besides its events. */
export interface SessionHooks {
  /** The node token is dead (revoked, its group token rotated, or expired while rks was away). */
  died(): void;
  /** rks refused to register the node. */
  refused(): void;
}

/**
 * The node token: registration with the group token, renewal before it ends, registration
 * again when it died. After a refused registration (rotated group token, deleted group,
 * callback saying no) the next try waits, doubling up to `backoffMs.max`: a stranger's
 * handshakes with an edge that lost its registration must not turn into registrations (and,
 * on rks, calls to the group manager) as fast as they come.
 */
export class NodeSession {
  private token?: string;
  private registering?: Promise<void>;
  private renewTimer?: NodeJS.Timeout;
  /** The last refused registration: none is tried again before `until`. */
  private refusedRegistration?: { until: number; delay: number; error: Error };
  private stopped = false;

  constructor(
    private readonly transport: Transport,
    private readonly opts: SessionOptions,
    private readonly tell: Tell,
    private readonly hooks: SessionHooks,
  ) {}

  /** The node token held, if any. */
  get current(): string | undefined {
    return this.token;
  }

  /** Whether a refused registration still bars the next try. */
  get barred(): boolean {
    return (this.refusedRegistration?.until ?? 0) > Date.now();
  }

  start(): Promise<void> {
    this.stopped = false;
    return this.register();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    this.token = undefined;
  }

  /**
   * Runs `fn` with the node token. A 403 may mean the token died (revoked, or expired while
   * rks was away): the token is checked, and if it is gone the node registers again and
   * `fn` runs once more.
   */
  async withToken<T>(fn: (token: string) => Promise<T>, retry: boolean): Promise<T> {
    if (!this.token) await this.register();
    const token = this.token!;
    try {
      return await fn(token);
    } catch (err) {
      if (!retry || !(err instanceof HttpError) || err.code !== 'forbidden') throw err;
      if (await this.alive(token)) throw err;
      this.died(token);
      await this.registerOrForget();
      return fn(this.token!);
    }
  }

  /** `token` is dead: no key fetched with it is served any longer, whatever registering again brings. */
  died(token: string): void {
    if (this.token === token) this.token = undefined;
    this.hooks.died();
  }

  /** Registers again; if rks refuses the node, no key it holds may be served any longer. */
  async registerOrForget(): Promise<void> {
    try {
      await this.register();
    } catch (err) {
      if (err instanceof HttpError && REFUSED.has(err.code)) this.hooks.refused();
      throw err;
    }
  }

  private async alive(token: string): Promise<boolean> {
    try {
      await this.renew(token);
      return true;
    } catch (err) {
      if (err instanceof HttpError && err.code === 'forbidden') return false;
      throw err;
    }
  }

  /** Registers, once at a time, and not before a refusal's wait is over. */
  private register(): Promise<void> {
    const refused = this.refusedRegistration;
    if (refused && refused.until > Date.now()) return Promise.reject(refused.error);
    this.registering ??= (async () => {
      const groupToken = typeof this.opts.groupToken === 'function' ? (await this.opts.groupToken()).trim() : this.opts.groupToken;
      try {
        const body = await this.transport.call<NodeToken>('POST', '/rks/v1/node', groupToken, { 'X-LCDN-nodeId': this.opts.nodeId });
        this.refusedRegistration = undefined;
        this.token = body.nodeToken;
        this.scheduleRenewal(body.ttl);
        this.tell('registered', { ttl: body.ttl });
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
    const body = await this.transport.call<NodeToken>('POST', '/rks/v1/auth/token/renew-self', token);
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
        this.tell('renewed', { ttl: next });
        return;
      }
      await this.register();
    } catch (err) {
      if (err instanceof HttpError && err.code === 'forbidden') {
        if (this.token) this.died(this.token);
        try {
          await this.registerOrForget();
          return;
        } catch (again) {
          this.tell('error', again as Error);
        }
      } else {
        this.tell('error', err as Error);
      }
      // rks or Vault unreachable: try again soon, well before the token can run out.
      const { min, max } = this.opts.backoffMs ?? { min: 1000, max: 60_000 };
      this.scheduleRenewal(ttl, Math.min(max, Math.max(min, (ttl * 1000) / 10)));
    }
  }
}
