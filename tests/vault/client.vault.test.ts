import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { adminToken, env, harness, vaultWrite } from '../support/harness';
import { chainFor } from '../support/pki';
import { associate, createGroup, registerNode, uniq } from '../support/rks';
import { freePort } from '../support/vault';
import { createLogger } from '../../src/log';

/** A TCP relay in front of Vault that counts the connections rks opens. */
async function countingProxy(target: URL): Promise<{ url: string; connections: () => number; close: () => void }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * The hot path (design §9): GET /rks/v1/secret/{fqdn} costs exactly one Vault request,
 * over a pooled keep-alive connection. Vault's own file audit device counts the requests
 * (filtered by a token only this test uses); a TCP relay counts the connections.
 */
describe('hot path: one Vault round trip per secret read', () => {
  const auditFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rks-audit-')), 'audit.log');
  const device = `rks-hotpath-${process.pid}`;

  afterAll(async () => {
    await fetch(`${env.vaultAddr}/v1/sys/audit/${device}`, { method: 'DELETE', headers: { 'X-Vault-Token': env.rootToken } });
    fs.rmSync(path.dirname(auditFile), { recursive: true, force: true });
  });

  it("a node's 20 reads make 20 Vault requests (and one lookup of its token) over one connection", async () => {
    const proxy = await countingProxy(new URL(env.vaultAddr));
    const h = harness({ vaultAddrs: [proxy.url] });
    try {
      const admin = await adminToken(h.app);
      const fqdn = `hot-${Date.now()}.example.com`;
      const g = uniq('hot');
      const c = await chainFor([fqdn]);
      await request(h.app)
        .post(`/rks/v1/secret/${fqdn}`)
        .set('X-Vault-Token', admin)
        .send({ data: { certificate: c.certificate, private_key: c.privateKey } })
        .expect(201);
      const groupToken = await createGroup(h.app, admin, g);
      await associate(h.app, admin, g, fqdn);
      // A node token nothing else uses, so its audit entries are this test's alone.
      const reader = (await registerNode(h.app, groupToken, 'n1')).nodeToken;
      const enabled = await vaultWrite(`sys/audit/${device}`, { type: 'file', options: { file_path: auditFile, log_raw: 'true' } }, 'PUT');
      expect(enabled.status).toBe(204);
      const connectionsBefore = proxy.connections();

      for (let i = 0; i < 20; i++) {
        const res = await request(h.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', reader);
        expect(res.status).toBe(200);
        expect(res.body.data.private_key).toBe(c.privateKey);
      }

      const entries = fs
        .readFileSync(auditFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((e) => e.type === 'request' && e.auth?.client_token === reader);
      const calls = entries.map((e) => `${e.request.operation} ${e.request.path}`);
      expect(calls).toEqual(['read auth/token/lookup-self', ...Array(20).fill(`read rks/data/groups/${g}/secrets/${fqdn}`)]);
      // The pool was already warm from the admin calls: no new connection at all.
      expect(proxy.connections() - connectionsBefore).toBe(0);
    } finally {
      h.close();
      proxy.close();
    }
  });
});

/** An HTTP server that answers as a Vault standby does when it does not forward: 429 on health, 307 to `active` otherwise. */
async function standby(active: () => string, health = 429): Promise<{ url: string; hits: () => number; close: () => void }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    if (req.url?.startsWith('/v1/sys/health')) {
      res.writeHead(health, { 'Content-Type': 'application/json' }).end(JSON.stringify({ initialized: true, sealed: false, standby: health !== 200 }));
      return;
    }
    res.writeHead(307, { Location: `${active()}${req.url}` }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    hits: () => hits,
    close: () => server.close(),
  };
}

describe('several Vault addresses', () => {
  it('finds the active node among several addresses before the first call, and never sends to a standby', async () => {
    const s = await standby(() => env.vaultAddr);
    const h = harness({ vaultAddrs: [s.url, env.vaultAddr] });
    try {
      const admin = await adminToken(h.app);
      for (let i = 0; i < 5; i++) expect((await request(h.app).get('/rks/v1/secret/none.example.com').set('X-Vault-Token', admin)).status).toBe(404);
      expect(s.hits()).toBe(1); // its health, once
      const metrics = (await request(h.app).get('/metrics')).text;
      expect(metrics).toContain('rks_vault_active{node="2"} 1');
      expect(metrics).toMatch(/rks_vault_failovers_total 0\b/);
    } finally {
      h.close();
      s.close();
    }
  });

  it('a node that says it is active but answers with a 307 to another configured address: rks moves there and stays', async () => {
    const s = await standby(() => env.vaultAddr, 200);
    const h = harness({ vaultAddrs: [s.url, env.vaultAddr] });
    try {
      const admin = await adminToken(h.app);
      for (let i = 0; i < 5; i++) expect((await request(h.app).get('/rks/v1/secret/none.example.com').set('X-Vault-Token', admin)).status).toBe(404);
      // Its health and leader, then the one call it redirected.
      expect(s.hits()).toBe(3);
      const metrics = (await request(h.app).get('/metrics')).text;
      expect(metrics).toContain('rks_vault_active{node="2"} 1');
      expect(metrics).toContain('rks_vault_active{node="1"} 0');
      // Strangers reading /metrics learn no Vault address.
      expect(metrics).not.toContain(s.url);
      expect(metrics).not.toContain(env.vaultAddr);
      expect(metrics).toMatch(/rks_vault_failovers_total 1\b/);
      const ready = await request(h.app).get('/readyz').set('X-Vault-Token', admin);
      expect(ready.status).toBe(200);
      // It still says it is active; rks keeps the one that answers.
      expect(ready.body.vault).toEqual({ active: env.vaultAddr, nodes: [{ addr: s.url, state: 'active' }, { addr: env.vaultAddr, state: 'active' }] });
    } finally {
      h.close();
      s.close();
    }
  });

  it('never follows a redirect to an address nobody configured: 503, and the token goes nowhere else', async () => {
    let elsewhere = 0;
    const trap = http.createServer((_req, res) => {
      elsewhere++;
      res.end();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const s = await standby(() => `http://127.0.0.1:${(trap.address() as net.AddressInfo).port}`);
    const single = harness({ vaultAddrs: [s.url] });
    try {
      const res = await request(single.app).get('/rks/v1/secret/x.example.com').set('X-Vault-Token', 'hvs.some-token');
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.body.errors).toEqual(["vault answered from a standby node: give rks every node's address"]);
    } finally {
      single.close();
    }
    const pair = harness({ vaultAddrs: [s.url, `http://127.0.0.1:${await freePort()}`] });
    try {
      const res = await request(pair.app).get('/rks/v1/secret/x.example.com').set('X-Vault-Token', 'hvs.some-token');
      expect(res.status).toBe(503);
      expect(res.body.errors).toEqual(['no active vault node']);
      expect(elsewhere).toBe(0);
    } finally {
      pair.close();
      s.close();
      trap.close();
    }
  });

  it('two standbys pointing at each other: a bounded number of tries, a 503 within the deadline', async () => {
    let a = '';
    let b = '';
    const sa = await standby(() => b);
    const sb = await standby(() => a);
    a = sa.url;
    b = sb.url;
    const h = harness({ vaultAddrs: [a, b], vaultTimeout: 1 });
    try {
      const started = Date.now();
      const res = await request(h.app).get('/rks/v1/secret/x.example.com').set('X-Vault-Token', 'hvs.some-token');
      expect(res.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(sa.hits() + sb.hits()).toBeLessThan(12);
    } finally {
      h.close();
      sa.close();
      sb.close();
    }
  });

  it('an outage is one warning line per reason, without a stack, however many requests fail', async () => {
    const lines: string[] = [];
    // Port 1: nothing listens there, so every connection is refused (a "free" port may be taken by
    // another suite's server by the time it is used).
    const dead = harness({ vaultAddrs: ['http://127.0.0.1:1'] }, createLogger('info', { write: (l: string) => void lines.push(l) }));
    try {
      for (let i = 0; i < 50; i++) expect((await request(dead.app).get('/rks/v1/secret/x.example.com').set('X-Vault-Token', 'hvs.t')).status).toBe(503);
      const parsed = lines.map((l) => JSON.parse(l));
      const warnings = parsed.filter((l) => l.level === 'warn' && l.msg !== 'request completed');
      expect(warnings).toHaveLength(1);
      expect(warnings[0].msg).toBe('vault is unreachable');
      expect(parsed.filter((l) => l.level === 'error')).toHaveLength(0);
      expect(lines.join('\n')).not.toMatch(/stack|    at /);
      // Each request still has its one access line.
      expect(parsed.filter((l) => l.msg === 'request completed' && l.res.statusCode === 503)).toHaveLength(50);
    } finally {
      dead.close();
    }
  });

  it('two nodes answering as active: the one the others name as leader is used', async () => {
    // A former active node that still says so (health 200, leader: itself) and answers nothing else.
    let staleHits = 0;
    const stale = http.createServer((req, res) => {
      if (req.url?.startsWith('/v1/sys/health')) return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"initialized":true,"sealed":false,"standby":false}');
      if (req.url?.startsWith('/v1/sys/leader')) return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"is_self":true}');
      staleHits++;
      res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"errors":["stale"]}');
    });
    await new Promise<void>((r) => stale.listen(0, '127.0.0.1', r));
    const staleUrl = `http://127.0.0.1:${(stale.address() as net.AddressInfo).port}`;
    // A standby naming the real Vault as leader.
    const witness = http.createServer((req, res) => {
      if (req.url?.startsWith('/v1/sys/leader')) return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ is_self: false, leader_address: env.vaultAddr }));
      res.writeHead(429).end();
    });
    await new Promise<void>((r) => witness.listen(0, '127.0.0.1', r));
    const witnessUrl = `http://127.0.0.1:${(witness.address() as net.AddressInfo).port}`;
    const h = harness({ vaultAddrs: [staleUrl, witnessUrl, env.vaultAddr] });
    try {
      const ready = await request(h.app).get('/readyz').set('X-Vault-Token', await adminToken(h.app));
      expect(ready.body.vault.active).toBe(env.vaultAddr);
      expect(ready.body.vault.nodes).toEqual([
        { addr: staleUrl, state: 'standby' },
        { addr: witnessUrl, state: 'standby' },
        { addr: env.vaultAddr, state: 'active' },
      ]);
      const admin = await adminToken(h.app);
      expect((await request(h.app).get('/rks/v1/secret/none.example.com').set('X-Vault-Token', admin)).status).toBe(404);
      expect(staleHits).toBe(0);
    } finally {
      h.close();
      stale.close();
      witness.close();
    }
  });
});
