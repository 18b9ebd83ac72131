import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import type { RksNode } from '../client';
import { isSecretName } from '../names';

const COMMAND_TIMEOUT_MS = 5000;
/** Certificates loaded into HAProxy at once. */
const LOAD_CONCURRENCY = 4;
/** What HAProxy answers when a command failed. */
const REFUSAL = /^(?:Can't|Cannot|Unknown|unknown|Error|error|Permission denied|Operation not permitted)|\bfailed\b/m;

export interface HaproxyOptions {
  /** HAProxy's runtime API (`stats socket … level admin`). */
  socket: string;
  /** The crt-list of the `bind … ssl crt-list <path> strict-sni` that serves the names, as written there. */
  crtList: string;
}

export interface HaproxyEvents {
  loaded: (name: string) => void;
  removed: (name: string) => void;
  error: (err: Error) => void;
}

/**
 * Keeps HAProxy's in-memory certificate store in step with what the node may serve, through
 * its runtime API: every name rks lists for the node is loaded (`new/set/commit ssl cert`,
 * `add ssl crt-list`) from the keys the node fetched, renewed when its TTL ends, and removed
 * (`del ssl crt-list`, `del ssl cert`) when rks withdraws it. Nothing touches the disk.
 * HAProxy has no hook to ask for a name during a handshake: with `strict-sni`, any other name
 * fails there, without a question to anyone.
 */
export class HaproxySync {
  /** Secret name → the fingerprint of the certificate HAProxy holds for it. */
  private readonly loaded = new Map<string, string>();
  private syncing: Promise<void> | null = null;
  private queue: Promise<void> = Promise.resolve();
  private again = false;
  private stopped = false;
  private readonly listeners: Partial<{ [K in keyof HaproxyEvents]: HaproxyEvents[K][] }> = {};

  constructor(
    private readonly node: RksNode,
    private readonly opts: HaproxyOptions,
  ) {}

  on<K extends keyof HaproxyEvents>(event: K, fn: HaproxyEvents[K]): this {
    (this.listeners[event] ??= [] as never[]).push(fn as never);
    return this;
  }

  private emit<K extends keyof HaproxyEvents>(event: K, ...args: Parameters<HaproxyEvents[K]>): void {
    for (const fn of this.listeners[event] ?? []) (fn as (...a: unknown[]) => void)(...args);
  }

  /** Clears what an earlier agent left in HAProxy, then loads every name the node may serve. */
  async start(): Promise<void> {
    this.node.on('allowed', () => void this.sync());
    // Back after a refusal (a rotated group token): its list may be the same, its keys are not loaded.
    this.node.on('registered', () => void this.sync());
    this.node.on('revoked', ({ names }) => void Promise.all(names.map((n) => this.remove(n))).then(() => this.sync()));
    // A key's TTL ended in the node: fetched anew (a renewed certificate) or withdrawn.
    this.node.on('expired', ({ name }) => void this.refresh(name));
    for (const cert of await this.storedCertificates()) await this.removeStored(cert);
    await this.sync();
  }

  /** Withdraws every certificate it loaded: HAProxy must not serve keys no agent looks after. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.syncing?.catch(() => undefined);
    await Promise.all([...this.loaded.keys()].map((n) => this.remove(n)));
  }

  /** Names whose certificate HAProxy holds now. */
  names(): string[] {
    return [...this.loaded.keys()].sort();
  }

  /** Brings HAProxy to the node's list; calls while one runs make it run once more after. */
  sync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      do {
        this.again = false;
        await this.syncOnce().catch((err: Error) => this.emit('error', err));
      } while (this.again && !this.stopped);
    })().finally(() => (this.syncing = null));
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    if (this.stopped) return;
    const allowed = await this.node.allowedNow();
    if (allowed === null) throw new Error('rks cannot list the names this node may serve (a classic RKS): HAProxy needs them all up front');
    const wanted = new Set(allowed.filter(isSecretName));
    for (const name of [...this.loaded.keys()]) if (!wanted.has(name)) await this.remove(name);
    const missing = [...wanted].filter((n) => !this.loaded.has(n));
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(LOAD_CONCURRENCY, missing.length) }, async () => {
        while (next < missing.length && !this.stopped) await this.refresh(missing[next++]!);
      }),
    );
  }

  /** Loads the node's current key for `name`, or withdraws it when the node may not have it. */
  private async refresh(name: string): Promise<void> {
    if (this.stopped || !isSecretName(name)) return;
    try {
      const secret = await this.node.secret(name);
      if (!secret) return await this.remove(name);
      const fingerprint = new X509Certificate(secret.certificate).fingerprint256;
      // HAProxy holds one certificate transaction at a time: loads go one after the other.
      await this.exclusive(async () => {
        if (this.stopped || this.loaded.get(name) === fingerprint) return;
        const cert = certName(name);
        const fresh = !this.loaded.has(name);
        if (fresh) await this.command(`new ssl cert ${cert}`);
        // The payload ends at its first empty line: none inside.
        const pem = `${secret.certificate.trim()}\n${secret.privateKey.trim()}`.replace(/\n\s*\n/g, '\n');
        try {
          await this.command(`set ssl cert ${cert} <<\n${pem}\n\n`);
          await this.command(`commit ssl cert ${cert}`);
          if (fresh) await this.command(`add ssl crt-list ${this.opts.crtList} ${cert}`);
        } catch (err) {
          await this.command(`abort ssl cert ${cert}`).catch(() => undefined);
          if (fresh) await this.removeStored(cert).catch(() => undefined);
          throw err;
        }
        this.loaded.set(name, fingerprint);
        this.emit('loaded', name);
      });
    } catch (err) {
      this.emit('error', err as Error);
    }
  }

  private async remove(name: string): Promise<void> {
    await this.exclusive(async () => {
      if (!this.loaded.has(name)) return;
      this.loaded.delete(name);
      await this.removeStored(certName(name));
      this.emit('removed', name);
    }).catch((err: Error) => this.emit('error', err));
  }

  /** Runs `fn` after every change to HAProxy's store asked for before it. */
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async removeStored(cert: string): Promise<void> {
    await this.command(`del ssl crt-list ${this.opts.crtList} ${cert}`).catch(() => undefined);
    await this.command(`del ssl cert ${cert}`);
  }

  /** The certificates in HAProxy's store that an agent loaded (named `rks/…`). */
  private async storedCertificates(): Promise<string[]> {
    const out = await this.command('show ssl cert');
    return out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('rks/') && /^[A-Za-z0-9_./-]+$/.test(l));
  }

  /** One command on a connection of its own, within a deadline; HAProxy's refusals throw. */
  private command(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.opts.socket);
      let out = '';
      const timer = setTimeout(() => socket.destroy(new Error(`HAProxy did not answer '${line.split(' ').slice(0, 3).join(' ')}' within ${COMMAND_TIMEOUT_MS} ms`)), COMMAND_TIMEOUT_MS);
      socket.setEncoding('utf8');
      socket.on('connect', () => socket.end(line.endsWith('\n') ? line : `${line}\n`));
      socket.on('data', (d: string) => (out += d));
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`HAProxy runtime API ${this.opts.socket}: ${err.message}`));
      });
      socket.on('close', () => {
        clearTimeout(timer);
        if (REFUSAL.test(out)) reject(new Error(`HAProxy refused '${line.split('\n')[0]!.split(' ').slice(0, 4).join(' ')}': ${out.trim().split('\n')[0]}`));
        else resolve(out);
      });
    });
  }
}

/** The name of a secret's certificate in HAProxy's store: no `*`, which its commands would take as a pattern. */
function certName(name: string): string {
  return `rks/${name.replace(/^\*\./, '_wildcard.')}.pem`;
}
