import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { RksNode } from '../../src/sdk';
import { EdgeAgent } from '../../src/edge/agent';
import { HaproxySync } from '../../src/edge/haproxy';
import { handshake, resume, sessionFrom } from '../support/edge';
import { ServedRks, adminToken, serveRks } from '../support/harness';
import { Issued, issue } from '../support/pki';
import { RunningServer, filesHolding, haproxyCommand, startHaproxy, startNginx } from '../support/servers';
import { createGroup, uniq } from '../support/rks';
import { freePort } from '../support/vault';
import { TestPebble, startPebble } from '../support/pebble';

const fp = (i: Issued) => new X509Certificate(i.certPem).fingerprint256;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const INTERVAL_MS = 500;
/** Revalidation interval, one request, and the server's own step (nginx looks at the agent every second, HAProxy is told at once). */
const BOUND_MS = INTERVAL_MS + 2000 + 1000;

/** Requests rks answered on a route, from its metrics. */
async function requestsTo(rks: ServedRks, route: string): Promise<number> {
  const text = (await request(rks.app).get('/metrics')).text;
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith('rks_http_requests_total{') && line.includes(`route="${route}"`)) n += Number(line.split(' ').pop());
  return n;
}

async function until(what: string, fn: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  while (!(await fn())) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
  return Date.now() - started;
}

/** How each TLS server in front gets its keys from the edge. */
export const MODES = {
  /** Debian's nginx with its Lua module: rks.lua asks the agent's socket for each handshake's name. */
  nginx: 'nginx with rks.lua, keys asked of the edge agent at each handshake',
  /** Debian's HAProxy: the agent loads every name into its store through the runtime API. */
  haproxy: 'HAProxy, its certificate store kept in step by the edge through the runtime API',
} as const;

/**
 * A TLS server in front of an edge, terminating TLS with keys from rks and nothing on disk:
 * the same promises in every mode (allowed names served, strangers' names failing for free,
 * renewals served without a restart, crisis controls within the bound, ACME answered).
 */
export function edgeModeSuite(mode: keyof typeof MODES): void {
describe(MODES[mode], () => {
  let rks: ServedRks;
  let admin: string;
  let ca: Issued;
  let g: string;
  let groupToken: string;
  let node: RksNode;
  let agent: EdgeAgent;
  let server: RunningServer;
  let haproxy: HaproxySync | undefined;
  let ports: { https: number; http: number };
  let agentDir: string;
  let pebble: TestPebble;
  const leaves: Record<string, Issued> = {};
  const names = { a: '', b: '', wild: '', renewed: '' };

  async function push(name: string, ttl = 300, dns = [name]): Promise<Issued> {
    const leaf = await issue({ name: dns[0]!, dns, issuer: ca });
    const update = name in leaves;
    await request(rks.app)[update ? 'put' : 'post'](`/rks/v1/secret/${name}`).set('X-Vault-Token', admin)
      .send({ data: { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem, meta: { ttl } } }).expect(update ? 200 : 201);
    leaves[name] = leaf;
    return leaf;
  }

  const served = async (name: string) => handshake(ports.https, name, ca.certPem);

  beforeAll(async () => {
    ports = { https: await freePort(), http: await freePort() };
    pebble = await startPebble({ httpPort: ports.http, validitySeconds: 3600 });
    // Managed secrets are looked at every second: an order starts right after it is asked for.
    rks = await serveRks({ managedCheckInterval: 1 });
    admin = await adminToken(rks.app);
    ca = await issue({ name: `${mode} test CA`, ca: true });
    g = uniq('ngx');
    groupToken = await createGroup(rks.app, admin, g);
    names.a = `a.${g}.example.com`;
    names.b = `b.${g}.example.com`;
    names.wild = `*.w.${g}.example.com`;
    names.renewed = `r.${g}.example.com`;
    await push(names.a);
    await push(names.b);
    await push(names.wild, 300, [names.wild]);
    await push(names.renewed, 2);
    for (const n of Object.values(names)) await request(rks.app).post(`/rks/v1/group/${g}/secrets/${n}`).set('X-Vault-Token', admin).expect(201);

    agentDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-agent-'));
    // As `rks edge` runs for each: HAProxy's agent hands keys on and keeps none.
    node = new RksNode({ url: rks.url, groupToken: () => groupToken, nodeId: `${mode}-1`, ca: rks.ca, revalidateMs: INTERVAL_MS, backoffMs: { min: 100, max: 500 }, handOff: mode === 'haproxy' });
    agent = new EdgeAgent(node, path.join(agentDir, 'edge.sock'));
    await agent.listen();
    await node.start();
    const agentSocket = path.join(agentDir, 'edge.sock');
    if (mode === 'nginx') {
      server = await startNginx({ agentSocket, https: ports.https, http: ports.http, luaDir: path.resolve(__dirname, '../../edge/nginx') });
    } else {
      const h = await startHaproxy({ agentSocket, https: ports.https, http: ports.http });
      server = h;
      // What an earlier agent that died left in HAProxy: the new one clears it.
      const stale = await issue({ name: 'stale.example.org', dns: ['stale.example.org'], issuer: ca });
      await haproxyCommand(h.socket, 'new ssl cert rks/stale.example.org.pem');
      await haproxyCommand(h.socket, `set ssl cert rks/stale.example.org.pem <<\n${stale.certPem.trim()}\n${stale.keyPem.trim()}\n\n`);
      await haproxyCommand(h.socket, 'commit ssl cert rks/stale.example.org.pem');
      await haproxyCommand(h.socket, `add ssl crt-list ${h.crtList} rks/stale.example.org.pem`);
      expect(await served('stale.example.org')).toHaveProperty('fingerprint');
      haproxy = new HaproxySync(node, { socket: h.socket, crtList: h.crtList });
      haproxy.on('error', (err) => process.stderr.write(`haproxy sync: ${err.message}\n`));
      await haproxy.start();
    }
  });

  afterAll(async () => {
    await haproxy?.stop();
    await server?.stop();
    await agent?.close();
    node?.stop();
    await rks?.stop();
    await pebble?.stop();
  });

  it('serves each allowed name its own certificate, a wildcard for the names under it, and HTTP over it', async () => {
    expect(await served(names.a)).toEqual({ fingerprint: fp(leaves[names.a]!), subject: names.a });
    expect(await served(names.b)).toEqual({ fingerprint: fp(leaves[names.b]!), subject: names.b });
    expect(await served(`x.w.${g}.example.com`)).toMatchObject({ fingerprint: fp(leaves[names.wild]!) });
    // Served again from the worker's memory: no new question to rks.
    const gets = await requestsTo(rks, '/rks/v1/secret/{fqdn}');
    for (let i = 0; i < 5; i++) expect(await served(names.a)).toHaveProperty('fingerprint', fp(leaves[names.a]!));
    expect(await requestsTo(rks, '/rks/v1/secret/{fqdn}')).toBe(gets);
  });

  it('fails the handshake of a name the node may not serve, and strangers\' names cost rks nothing', async () => {
    // A certificate an earlier agent left in HAProxy is gone (loaded there before this agent started).
    expect(await served('stale.example.org')).toHaveProperty('failed');
    await served(names.a);
    await sleep(2100); // past the SDK's bound on list refreshes after a miss
    const [gets, lists] = [await requestsTo(rks, '/rks/v1/secret/{fqdn}'), await requestsTo(rks, '/rks/v1/node/secrets')];
    for (let i = 0; i < 30; i++) expect(await served(`stranger-${i}.example.net`)).toHaveProperty('failed');
    expect(await served('no sni, bad name!')).toHaveProperty('failed');
    expect(await requestsTo(rks, '/rks/v1/secret/{fqdn}')).toBe(gets);
    // At most one refresh of the node's list (a name just associated is learnt that way).
    expect((await requestsTo(rks, '/rks/v1/node/secrets')) - lists).toBeLessThanOrEqual(1);
  });

  it('serves a renewed certificate when the old one\'s TTL ends, without a restart', async () => {
    const before = await served(names.renewed);
    expect(before).toHaveProperty('fingerprint', fp(leaves[names.renewed]!));
    const next = await push(names.renewed, 2);
    await until('the new certificate served', async () => (await served(names.renewed) as { fingerprint?: string }).fingerprint === fp(next), 5000);
  });

  it('serves a replaced key within the bound, long before its TTL ends, with no handshake failing in between', async () => {
    const name = `k.${g}.example.com`;
    const first = await push(name, 300);
    await request(rks.app).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    await until('served', async () => (await served(name) as { fingerprint?: string }).fingerprint === fp(first), BOUND_MS + 2000);
    const next = await push(name, 300);
    const seen = new Set<string>();
    const took = await until('the new key served', async () => {
      const h = await served(name);
      expect(h).toHaveProperty('fingerprint');
      seen.add((h as { fingerprint: string }).fingerprint);
      return (h as { fingerprint: string }).fingerprint === fp(next);
    }, BOUND_MS);
    expect(took).toBeLessThan(BOUND_MS);
    expect([...seen].every((f) => f === fp(first) || f === fp(next))).toBe(true);
    for (let i = 0; i < 3; i++) expect(await served(name)).toHaveProperty('fingerprint', fp(next));
  });

  it('stops serving a dissociated name within the bound, resumed sessions included, then every name once the group token is rotated', async () => {
    expect(await served(names.b)).toHaveProperty('fingerprint');
    const session = await sessionFrom(ports.https, names.b, ca.certPem);
    // HAProxy resumes sessions; nginx is told not to (its certificate phase, and rks, would be skipped).
    expect(await resume(ports.https, names.b, ca.certPem, session)).toEqual({ resumed: mode === 'haproxy' });
    await request(rks.app).delete(`/rks/v1/group/${g}/secrets/${names.b}`).set('X-Vault-Token', admin).expect(204);
    expect(await until('b refused', async () => 'failed' in (await served(names.b)), BOUND_MS)).toBeLessThan(BOUND_MS);
    // A client that kept a session ticket does not get around it.
    expect(await resume(ports.https, names.b, ca.certPem, session)).toHaveProperty('failed');
    expect(await served(names.a)).toHaveProperty('fingerprint');

    const rotated = await request(rks.app).put(`/rks/v1/group/${g}/grouptoken`).set('X-Vault-Token', admin).expect(200);
    expect(await until('a refused', async () => 'failed' in (await served(names.a)), BOUND_MS)).toBeLessThan(BOUND_MS);
    // The new token reaches the agent (a rewritten token file): served again.
    groupToken = rotated.body.groupToken;
    await until('a served again', async () => 'fingerprint' in (await served(names.a)), 5000);
  });

  it(`answers the ACME HTTP-01 challenge of a managed certificate through ${mode}, which then serves it`, async () => {
    const issuer = uniq('pebble');
    await request(rks.app).post(`/rks/v1/acme/issuers/${issuer}`).set('X-Vault-Token', admin)
      .send({ directory: pebble.directory, caBundle: pebble.tlsCa, termsOfServiceAgreed: true }).expect(201);
    const name = `m.${g}.example.com`;
    await request(rks.app).post(`/rks/v1/secret/${name}/managed`).set('X-Vault-Token', admin).send({ issuer, ttl: 300 }).expect(202);
    let info: request.Response | undefined;
    await until('issued by Pebble', async () => {
      info = await request(rks.app).get(`/rks/v1/secret/${name}/info`).set('X-Vault-Token', admin);
      return info.status === 200 && !info.body.pending;
    }, 30_000);
    expect(info!.body.renewal).toMatchObject({ failures: 0 });
    await request(rks.app).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    const root = await pebble.issuingRoot();
    // Verified against Pebble's root: the certificate issued, not the placeholder.
    await until('served', async () => 'fingerprint' in (await handshake(ports.https, name, root)), BOUND_MS + 2000);
  }, 60_000); // its own waits (30 s for the order, then the bound) say what was late, not jest's timeout

  it(`leaves no private key on disk: not in ${mode}'s directory, the agent's, or the temp dirs`, () => {
    // The key's own bytes: past the header every P-256 key in PKCS#8 shares.
    const needle = (pem: string) => pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('').slice(48, 90);
    for (const name of Object.keys(leaves)) {
      expect(filesHolding([server.dir, agentDir, os.tmpdir(), '/var/lib/nginx', '/var/log/nginx', '/var/lib/haproxy'], needle(leaves[name]!.keyPem))).toEqual([]);
    }
  });
});
}
