import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { handshake } from '../support/edge';
import { ServedRks, adminToken, serveRks } from '../support/harness';
import { issue } from '../support/pki';
import { createGroup, uniq } from '../support/rks';
import { Running, runRks } from '../support/serve';
import { haproxyCommand, startHaproxy } from '../support/servers';
import { freePort } from '../support/vault';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const RUN_MS = 60_000;

/** GET on a plain HTTP server, by TCP port or Unix socket: its status, or the error. */
function get(target: { port: number } | { socketPath: string }, urlPath: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get({ ...target, host: '127.0.0.1', path: urlPath, timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err) => resolve(err.message));
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/**
 * `rks edge` in every documented combination of flags runs until it is stopped, whatever it
 * listens on (an HAProxy agent alone listens on nothing): a minute each, at once, keeping up
 * with rks the whole time (a dissociation midway reaches HAProxy).
 */
describe('rks edge stays up in every mode until it is stopped', () => {
  let rks: ServedRks;
  let admin: string;
  let dir: string;
  const edges: Running[] = [];
  const closers: (() => unknown)[] = [];

  beforeAll(async () => {
    rks = await serveRks();
    admin = await adminToken(rks.app);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-edge-modes-'));
  });
  afterAll(async () => {
    await Promise.all(edges.map((e) => e.stop()));
    for (const close of closers) await close();
    await rks.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('listen, --upstream http and tcp, an nginx agent, --http-listen alone, HAProxy alone and HAProxy with ACME: all up a minute later, in step with rks', async () => {
    const g = uniq('modes');
    const groupToken = await createGroup(rks.app, admin, g);
    fs.writeFileSync(path.join(dir, 'group.token'), groupToken, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'ca.pem'), rks.ca);
    const ca = await issue({ name: `ca ${g}`, ca: true });
    const [kept, dropped] = [`${uniq('kept')}.example.com`, `${uniq('drop')}.example.com`];
    for (const name of [kept, dropped]) {
      const leaf = await issue({ name, dns: [name], issuer: ca });
      await request(rks.app).post(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin)
        .send({ data: { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem, meta: { ttl: 300 } } }).expect(201);
      await request(rks.app).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    }
    // The origins --upstream passes to, and two HAProxies (one per agent: each clears what it does not hold).
    const origin = http.createServer((_req, res) => res.end('origin'));
    const tcpOrigin = net.createServer((s) => s.end());
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => tcpOrigin.listen(0, '127.0.0.1', r));
    closers.push(() => origin.close(), () => tcpOrigin.close());
    const haproxies = [];
    for (const i of [1, 2]) {
      const h = await startHaproxy({ agentSocket: path.join(dir, `haproxy-agent-${i}.sock`), https: await freePort(), http: await freePort() });
      closers.push(() => h.stop());
      haproxies.push(h);
    }
    const [alone, withAcme] = haproxies as [(typeof haproxies)[number], (typeof haproxies)[number]];

    const ports = { listen: await freePort(), http: await freePort(), tcp: await freePort(), plain: await freePort(), acme: await freePort() };
    const modes: Record<string, { args: string[]; alive: () => Promise<boolean> }> = {
      listen: {
        args: ['--listen', `127.0.0.1:${ports.listen}`],
        alive: async () => 'fingerprint' in (await handshake(ports.listen, kept, ca.certPem)),
      },
      'upstream http': {
        args: ['--listen', `127.0.0.1:${ports.http}`, '--upstream', `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`],
        alive: async () => 'fingerprint' in (await handshake(ports.http, kept, ca.certPem)),
      },
      'upstream tcp': {
        args: ['--listen', `127.0.0.1:${ports.tcp}`, '--upstream', `tcp://127.0.0.1:${(tcpOrigin.address() as net.AddressInfo).port}`],
        alive: async () => 'fingerprint' in (await handshake(ports.tcp, kept, ca.certPem)),
      },
      'nginx agent': {
        args: ['--no-listen', '--agent-socket', path.join(dir, 'nginx-agent.sock')],
        alive: async () => (await get({ socketPath: path.join(dir, 'nginx-agent.sock') }, `/v1/certificate/${kept}`)) === 200,
      },
      'http-listen alone': {
        args: ['--no-listen', '--http-listen', `127.0.0.1:${ports.plain}`],
        alive: async () => (await get({ port: ports.plain }, '/.well-known/acme-challenge/none')) === 404,
      },
      'haproxy alone': {
        args: ['--no-listen', '--haproxy-socket', alone.socket, '--haproxy-crt-list', alone.crtList],
        alive: async () => (await haproxyCommand(alone.socket, `show ssl crt-list ${alone.crtList}`)).includes(`rks/${kept}`),
      },
      'haproxy with ACME': {
        args: ['--no-listen', '--haproxy-socket', withAcme.socket, '--haproxy-crt-list', withAcme.crtList, '--agent-socket', path.join(dir, 'haproxy-agent-2.sock'), '--http-listen', `127.0.0.1:${ports.acme}`],
        alive: async () => (await haproxyCommand(withAcme.socket, `show ssl crt-list ${withAcme.crtList}`)).includes(`rks/${kept}`),
      },
    };
    const names = Object.keys(modes);
    names.forEach((mode, i) => {
      edges.push(runRks(['edge', '--node-id', `edge-${i}`, '--group-token-file', path.join(dir, 'group.token'), '--revalidate-interval', '2', ...modes[mode]!.args], {
        RKS_URL: rks.url,
        RKS_CA_CERT: path.join(dir, 'ca.pem'),
      }));
    });
    await Promise.all(edges.map((e) => e.waitFor('registered with rks')));
    const upAtStart: Record<string, boolean> = {};
    const deadline = Date.now() + 15_000;
    for (const mode of names) {
      while (!(upAtStart[mode] = await modes[mode]!.alive()) && Date.now() < deadline) await sleep(200);
    }
    expect(upAtStart).toEqual(Object.fromEntries(names.map((m) => [m, true])));

    // Midway, a name is dissociated: both HAProxy agents must still be there to withdraw it.
    await sleep(RUN_MS / 2);
    await request(rks.app).delete(`/rks/v1/group/${g}/secrets/${dropped}`).set('X-Vault-Token', admin).expect(204);
    await sleep(RUN_MS / 2);

    const exited = Object.fromEntries(names.map((m, i) => [m, edges[i]!.child.exitCode]));
    expect(exited).toEqual(Object.fromEntries(names.map((m) => [m, null])));
    const upAtEnd: Record<string, boolean> = {};
    for (const mode of names) upAtEnd[mode] = await modes[mode]!.alive();
    expect(upAtEnd).toEqual(Object.fromEntries(names.map((m) => [m, true])));
    for (const h of [alone, withAcme]) {
      const listed = await haproxyCommand(h.socket, `show ssl crt-list ${h.crtList}`);
      expect([listed.includes(`rks/${kept}`), listed.includes(`rks/${dropped}`)]).toEqual([true, false]);
    }
    // Stopped, each ends cleanly; an HAProxy agent takes what it loaded with it.
    const codes = await Promise.all(edges.map((e) => e.stop()));
    expect(codes).toEqual(names.map(() => 0));
    for (const h of [alone, withAcme]) expect(await haproxyCommand(h.socket, `show ssl crt-list ${h.crtList}`)).not.toContain('rks/');
  }, RUN_MS + 60_000);
});
