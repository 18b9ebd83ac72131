import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { RksNode } from '../../src/sdk';
import { HaproxySync } from '../../src/edge/haproxy';

/**
 * HAProxy's runtime API in the two states that a real one shows only under load, and cannot be
 * brought to on purpose: its certificate lock still held by the commit before (taken with a try),
 * and a transaction left open on another certificate. Answers in HAProxy's own words.
 */
function runtimeApi(socket: string, opts: { lockedFor: number; openTransaction?: string }) {
  const store = new Set<string>();
  const commands: string[] = [];
  let locked = opts.lockedFor;
  let open = opts.openTransaction;
  const server = net.createServer((c) => {
    let line = '';
    c.on('data', (d) => {
      line += d;
      if (!line.includes('\n')) return;
      if (line.startsWith('set ssl cert') && !line.includes('\n\n')) return;
      const cert = line.split('\n')[0]!.split(' ')[3];
      const cmd = line.split('\n')[0]!.split(' ').slice(0, 3).join(' ');
      commands.push(`${cmd} ${cert ?? ''}`.trim());
      let out = '';
      if (cmd.startsWith('show ssl cert')) out = [...store].join('\n') + '\n';
      else if (cmd === 'new ssl cert' && locked-- > 0) out = "Can't create a certificate!\nOperations on certificates are currently locked!\n";
      else if (cmd === 'new ssl cert') store.add(cert!);
      else if (cmd === 'set ssl cert' && open && open !== cert) out = `The ongoing transaction is about '${open}' but you are trying to set '${cert}'\nCan't update ${cert}!\n`;
      else if (cmd === 'set ssl cert') open = cert;
      else if (cmd === 'abort ssl cert') open = open === cert ? undefined : open;
      else if (cmd === 'commit ssl cert') open = undefined;
      else if (cmd === 'del ssl cert') store.delete(cert!);
      c.end(out);
    });
  });
  server.listen(socket);
  return { server, store, commands };
}

function node(names: string[]): RksNode & EventEmitter & { fetched: string[] } {
  const n = new EventEmitter() as RksNode & EventEmitter & { fetched: string[] };
  Object.assign(n, {
    fetched: [] as string[],
    allowedNow: async () => names,
    allows: (name: string) => new Set(names).has(name),
    secret: async (name: string) => {
      n.fetched.push(name);
      return { name, certificate: `CERT ${name}\n`, privateKey: 'KEY\n', ttl: 600, expiresAt: Date.now() + 600_000 };
    },
  });
  return n;
}

describe('the HAProxy sync', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-haproxy-unit-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** The runtime API in the given state, a node that may serve `names`, and the sync between them; `fn` runs once it started. */
  async function syncing(state: Parameters<typeof runtimeApi>[1], names: string[], fn: (t: { api: ReturnType<typeof runtimeApi>; rks: ReturnType<typeof node>; sync: HaproxySync; errors: string[] }) => Promise<void>) {
    const api = runtimeApi(path.join(dir, 'api.sock'), state);
    const rks = node(names);
    const sync = new HaproxySync(rks, { socket: path.join(dir, 'api.sock'), crtList: '/etc/haproxy/rks.crtlist' });
    const errors: string[] = [];
    sync.on('error', (e) => errors.push(e.message));
    try {
      await sync.start();
      await fn({ api, rks, sync, errors });
    } finally {
      await sync.stop();
      api.server.close();
    }
  }

  it('tries again when HAProxy\'s certificate lock is still held: each name loaded once, fetched once', () =>
    syncing({ lockedFor: 3 }, ['a.example.com', 'b.example.com', 'c.example.com'], async ({ api, rks, sync, errors }) => {
      expect(errors).toEqual([]);
      expect(sync.names()).toEqual(['a.example.com', 'b.example.com', 'c.example.com']);
      expect([...api.store].sort()).toEqual(['rks/a.example.com.pem', 'rks/b.example.com.pem', 'rks/c.example.com.pem']);
      expect(rks.fetched.sort()).toEqual(['a.example.com', 'b.example.com', 'c.example.com']);
      expect(api.commands.filter((c) => c.startsWith('new ssl cert')).length).toBe(3 + 3);
    }));

  it('aborts a transaction left open on another certificate, then loads', () =>
    syncing({ lockedFor: 0, openTransaction: 'rks/left.example.com.pem' }, ['a.example.com'], async ({ api, rks, sync, errors }) => {
      expect(errors).toEqual([]);
      expect(sync.names()).toEqual(['a.example.com']);
      expect(api.commands).toContain('abort ssl cert rks/left.example.com.pem');
      expect(rks.fetched).toEqual(['a.example.com']);
    }));

  it('gives up on a lock that stays, with HAProxy\'s words', () =>
    syncing({ lockedFor: 1000 }, ['a.example.com'], async ({ sync, errors }) => {
      expect(errors).toEqual([expect.stringContaining('currently locked')]);
      expect(sync.names()).toEqual([]);
    }));

  it('reads a store of thousands of names as HAProxy sends it, in pieces: a name HAProxy lost is loaded again, one no list names goes', () => {
    const names = Array.from({ length: 2500 }, (_, i) => `name-${String(i).padStart(4, '0')}.a-rather-long-customer-domain.example.com`);
    return syncing({ lockedFor: 0 }, names, async ({ api, rks, sync, errors }) => {
      expect(api.store.size).toBe(2500);
      // Some 150 KB of answer: more than one read of the socket.
      expect([...api.store].join('\n').length).toBeGreaterThan(128 * 1024);
      api.store.delete(`rks/${names[1234]}.pem`);
      api.store.add('rks/gone.example.com.pem');
      api.store.add('/etc/haproxy/own.pem');
      await sync.sync();
      expect(errors).toEqual([]);
      expect(api.store.has(`rks/${names[1234]}.pem`)).toBe(true);
      expect(api.store.has('rks/gone.example.com.pem')).toBe(false);
      expect(api.store.has('/etc/haproxy/own.pem')).toBe(true);
      expect(api.store.size).toBe(2501);
      expect(sync.names()).toEqual(names);
      // Only what HAProxy lost was fetched again.
      expect(rks.fetched.length).toBe(2501);
      expect(rks.fetched.filter((n) => n === names[1234])).toHaveLength(2);
    });
  });
});
