import { createHash } from 'node:crypto';
import net from 'node:net';
import type { RksNode } from '../sdk';
import { isSecretName } from '../names';

const COMMAND_TIMEOUT_MS = 5000;
/** HAProxy is compared with the node's list at least this often (a failed command is tried again then). */
const SYNC_EVERY_MS = 10_000;
/** A key rks could not give again is asked for this often until its TTL ends. */
const RETRY_MS = 10_000;
/** Certificates loaded into HAProxy at once. */
const LOAD_CONCURRENCY = 4;
/** What `until` counts from. */
const EPOCH = Date.now();
/** HAProxy's certificate lock was taken: the command is tried again, this many times in all (some 2 s). */
const LOCK_ATTEMPTS = 8;
const LOCKED = /currently locked/;
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
  /**
   * Secret name → what HAProxy holds for it: 48 bits of its certificate's hash. One per name:
   * a number, where a string of the hash weighed some 100 bytes more (10 MB at 100,000 names).
   */
  private readonly loaded = new Map<string, number>();
  /** When the TTL of the key HAProxy holds for a name ends: seconds after `EPOCH`, small enough to be kept unboxed. */
  private readonly until = new Map<string, number>();
  private syncing: Promise<void> | null = null;
  private queue: Promise<void> = Promise.resolve();
  private again = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
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

  /**
   * Loads every name the node may serve, after clearing what an earlier agent left; then keeps
   * HAProxy in step at every change rks tells, and every SYNC_EVERY_MS whatever happens (a
   * failed command is tried again there).
   */
  async start(): Promise<void> {
    this.node.on('allowed', () => void this.sync());
    // Names withdrawn: gone from the list the sync follows. Every name (the node token died): all
    // go at once, and come back one by one as the node fetches them anew.
    this.node.on('withdrawn', ({ names }) => void (names ? this.sync() : this.clear().then(() => this.sync())));
    // Back after a refusal (a rotated group token): its list may be the same, its keys are not loaded.
    this.node.on('registered', () => void this.sync());
    // A key's TTL ended in the node: fetched anew (a renewed certificate) or withdrawn.
    this.node.on('expired', ({ name }) => void this.refresh(name));
    // A key rks replaced: fetched anew, a few at a time, and HAProxy takes it for new handshakes.
    this.node.on('replaced', ({ names }) => void this.refreshAll(names));
    this.timer = setInterval(() => void this.sync(), SYNC_EVERY_MS);
    this.timer.unref();
    await this.sync();
  }

  /** Withdraws every certificate it loaded: HAProxy must not serve keys no agent looks after. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.syncing?.catch(() => undefined);
    await this.clear();
  }

  /** Every `rks/` certificate out of HAProxy. */
  private clear(): Promise<void> {
    return this.exclusive(async () => {
      const stored: string[] = [];
      await this.eachStored((cert) => stored.push(cert));
      for (const cert of stored) await this.removeStored(cert);
      for (const name of this.loaded.keys()) this.emit('removed', name);
      this.loaded.clear();
    }).catch((err: Error) => this.emit('error', err));
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

  /**
   * HAProxy's own store is the truth of what it serves: every `rks/` certificate in it that the
   * node may not serve goes (what an earlier agent left, what a failed removal left), every
   * name it may serve and HAProxy lacks is loaded.
   */
  private async syncOnce(): Promise<void> {
    if (this.stopped) return;
    const allowed = await this.node.allowedNow();
    if (allowed === null) throw new Error('rks cannot list the names this node may serve (a classic RKS): HAProxy needs them all up front');
    // By name, from the list's own strings: at 100,000 names, a second copy of each is megabytes.
    const wanted = new Set(allowed.filter(isSecretName));
    await this.exclusive(async () => {
      // Each name loaded as far as this agent knows is crossed off when found in HAProxy's store:
      // what is left HAProxy lost (restarted, or a load that failed half-way).
      const lost = new Set(this.loaded.keys());
      const unwanted: [cert: string, name: string | null][] = [];
      await this.eachStored((cert, name) => {
        if (name !== null && wanted.has(name)) lost.delete(name);
        else unwanted.push([cert, name]);
      });
      for (const [cert, name] of unwanted) {
        await this.removeStored(cert);
        if (name !== null && this.loaded.delete(name)) this.emit('removed', name);
      }
      for (const name of lost) this.loaded.delete(name);
    });
    await this.refreshAll(allowed.filter((n) => wanted.has(n) && !this.loaded.has(n)));
  }

  /** `refresh` for each name, a few at a time. */
  private async refreshAll(names: string[]): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(LOAD_CONCURRENCY, names.length) }, async () => {
        while (next < names.length && !this.stopped) await this.refresh(names[next++]!);
      }),
    );
  }

  /** Loads the node's current key for `name`, or withdraws it when the node may not have it. */
  private async refresh(name: string): Promise<void> {
    if (this.stopped || !isSecretName(name)) return;
    try {
      const secret = await this.node.secret(name);
      if (!secret) {
        // rks unreachable: the key loaded serves on until its TTL ends, and is asked for again meanwhile.
        const until = EPOCH + (this.until.get(name) ?? 0) * 1000;
        if (this.node.allows(name) && Date.now() < until) {
          setTimeout(() => void this.refresh(name), Math.min(RETRY_MS, until - Date.now())).unref();
          return;
        }
        return await this.remove(name);
      }
      const fingerprint = createHash('sha256').update(secret.certificate).digest().readUIntBE(0, 6);
      this.until.set(name, Math.floor((secret.expiresAt - EPOCH) / 1000));
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
      await this.removeStored(certName(name));
      // Forgotten once HAProxy let it go; else the next sync removes it.
      this.loaded.delete(name);
      this.until.delete(name);
      this.emit('removed', name);
    }).catch((err: Error) => this.emit('error', err));
  }

  /** Runs `fn` after every change to HAProxy's store asked for before it. */
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Out of the crt-list, any transaction on it dropped, out of the store: it fails only if it stays. */
  private async removeStored(cert: string): Promise<void> {
    await this.command(`abort ssl cert ${cert}`).catch(() => undefined);
    await this.command(`del ssl crt-list ${this.opts.crtList} ${cert}`).catch(() => undefined);
    await this.command(`del ssl cert ${cert}`);
  }

  /**
   * Each certificate in HAProxy's store that an agent loaded (named `rks/…`; `*rks/…` while in a
   * transaction), with the secret name it holds (null: none this agent would have made). Read
   * line by line as HAProxy sends it: at 100,000 names the whole answer is megabytes.
   */
  private async eachStored(visit: (cert: string, name: string | null) => void): Promise<void> {
    await this.command('show ssl cert', (line) => {
      const cert = line.trim().replace(/^\*/, '');
      if (!cert.startsWith('rks/')) return false;
      if (/^[A-Za-z0-9_./-]+$/.test(cert)) visit(cert, nameOf(cert));
      return true;
    });
  }

  /**
   * One command, HAProxy's refusals thrown. HAProxy takes its certificate lock with a try, and a
   * command right after another's commit can find it still held: tried again shortly. A
   * transaction left open on another certificate (a failed abort, an earlier agent) is aborted:
   * every transaction of this agent runs alone (see exclusive), so none other is in progress.
   */
  private async command(line: string, take?: (line: string) => boolean): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const out = await this.send(line, take);
      if (attempt < LOCK_ATTEMPTS && LOCKED.test(out)) {
        await new Promise((r) => setTimeout(r, Math.min(10 * 2 ** attempt, 400)));
        continue;
      }
      const open = /ongoing transaction is about '([^'\s]+)'/.exec(out)?.[1];
      if (open && attempt < LOCK_ATTEMPTS && !line.includes(` ${open}`)) {
        await this.send(`abort ssl cert ${open}`);
        continue;
      }
      if (REFUSAL.test(out)) throw new Error(`HAProxy refused '${line.split('\n')[0]!.split(' ').slice(0, 4).join(' ')}': ${out.trim().split('\n').join(' ')}`);
      return out;
    }
  }

  /**
   * One command on a connection of its own, within a deadline: HAProxy's answer, but for the
   * lines `take` took as they came.
   */
  private send(line: string, take?: (line: string) => boolean): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.opts.socket);
      let out = '';
      let partial = '';
      const timer = setTimeout(() => socket.destroy(new Error(`HAProxy did not answer '${line.split(' ').slice(0, 3).join(' ')}' within ${COMMAND_TIMEOUT_MS} ms`)), COMMAND_TIMEOUT_MS);
      socket.setEncoding('utf8');
      socket.on('connect', () => socket.end(line.endsWith('\n') ? line : `${line}\n`));
      socket.on('data', (d: string) => {
        if (!take) return void (out += d);
        const lines = (partial + d).split('\n');
        partial = lines.pop()!;
        for (const l of lines) if (!take(l)) out += `${l}\n`;
      });
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`HAProxy runtime API ${this.opts.socket}: ${err.message}`));
      });
      socket.on('close', () => {
        clearTimeout(timer);
        if (partial && !take?.(partial)) out += partial;
        resolve(out);
      });
    });
  }
}

/** The name of a secret's certificate in HAProxy's store: no `*`, which its commands would take as a pattern. */
function certName(name: string): string {
  return `rks/${name.replace(/^\*\./, '_wildcard.')}.pem`;
}

/** The secret name `certName` made `cert` of, or null. */
function nameOf(cert: string): string | null {
  const m = /^rks\/(.+)\.pem$/.exec(cert);
  const name = m ? m[1]!.replace(/^_wildcard\./, '*.') : null;
  return name !== null && isSecretName(name) && certName(name) === cert ? name : null;
}
