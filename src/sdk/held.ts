import tls from 'node:tls';
import { Deadlines } from './deadlines';

/** A certificate and key held in memory, never on disk, until `expiresAt`. */
export interface NodeSecret {
  name: string;
  certificate: string;
  privateKey: string;
  /** Seconds the key is kept: the TTL rks gave, cut short by the certificate's own end. */
  ttl: number;
  expiresAt: number;
}

/**
 * The names a node holds, each until its time comes (the end of its key's TTL, or when a key
 * handed on is due again), with the key itself unless it was handed on. One timer for all.
 */
export class HeldKeys {
  /** Name → when its time comes (ms since the epoch). A number, not an object: an agent holds 100,000. */
  private readonly until = new Map<string, number>();
  /** Name → its key, and its TLS context once a handshake asked (none for a key handed on). */
  private readonly keys = new Map<string, { secret: NodeSecret; context?: tls.SecureContext }>();
  private readonly deadlines: Deadlines;

  /** `due(name)` once a name's time came; it is no longer held then. */
  constructor(due: (name: string) => void) {
    this.deadlines = new Deadlines((name, at) => {
      // Not the time it holds (fetched anew or dropped since): an entry left behind.
      if (this.until.get(name) !== at) return;
      this.drop(name);
      due(name);
    });
  }

  get size(): number {
    return this.until.size;
  }

  has(name: string): boolean {
    return this.until.has(name);
  }

  names(): string[] {
    return [...this.until.keys()];
  }

  /** The key held for `name` while its time has not come. */
  key(name: string): NodeSecret | undefined {
    const secret = this.keys.get(name)?.secret;
    return secret && (this.until.get(name) ?? 0) > Date.now() ? secret : undefined;
  }

  /** Held, but its time came (its deadline not run yet). */
  overdue(name: string): boolean {
    return (this.until.get(name) ?? Infinity) <= Date.now();
  }

  /** Holds `name` until `at`, with its key unless `secret` is null (handed on): a key held before is replaced. */
  hold(name: string, secret: NodeSecret | null, at: number): void {
    this.until.set(name, at);
    if (secret) this.keys.set(name, { secret });
    else this.keys.delete(name);
    this.deadlines.add(name, at);
    // Deadlines of names held anew stay in the heap until their time: not more than the names.
    if (this.deadlines.size > 2 * this.until.size + 1024) this.deadlines.keep((n, t) => this.until.get(n) === t);
  }

  /** Whether it was held. */
  drop(name: string): boolean {
    this.keys.delete(name);
    return this.until.delete(name);
  }

  clear(): void {
    this.until.clear();
    this.keys.clear();
    this.deadlines.clear();
  }

  /** The TLS context of a held key, made at its first handshake (a key only handed on needs none). */
  context(secret: NodeSecret): tls.SecureContext {
    const held = this.keys.get(secret.name);
    if (held?.secret === secret) return (held.context ??= tls.createSecureContext({ cert: secret.certificate, key: secret.privateKey }));
    return tls.createSecureContext({ cert: secret.certificate, key: secret.privateKey });
  }
}
