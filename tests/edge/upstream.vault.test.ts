import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { ServedRks, adminToken, serveRks } from '../support/harness';
import { Issued, issue } from '../support/pki';
import { createGroup, uniq } from '../support/rks';
import { Running, runRks } from '../support/serve';
import { freePort } from '../support/vault';

/** One HTTPS request with SNI over HTTP/1.1: status, headers and body. */
function get(
  port: number,
  name: string,
  ca: string,
  opts: { method?: string; body?: string; path?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: opts.path ?? '/hello?x=1', method: opts.method ?? 'GET', headers: { host: name, ...opts.headers }, createConnection: () => tls.connect({ port, host: '127.0.0.1', servername: name, ca, ALPNProtocols: ['http/1.1'] }) },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * `rks edge --upstream`: TLS terminated with the keys from rks, in front of any origin: an HTTP
 * one (HTTP/2 and 1.1 from clients, X-Forwarded-*), or a TCP one told the client by the PROXY
 * protocol v2, as Hitch does for Varnish.
 */
describe('rks edge --upstream, in front of any origin', () => {
  let rks: ServedRks;
  let admin: string;
  let ca: Issued;
  let dir: string;
  let name: string;
  let groupToken: string;
  const edges: Running[] = [];

  beforeAll(async () => {
    rks = await serveRks();
    admin = await adminToken(rks.app);
    ca = await issue({ name: 'upstream CA', ca: true });
    const g = uniq('up');
    groupToken = await createGroup(rks.app, admin, g);
    name = `o.${g}.example.com`;
    const leaf = await issue({ name, dns: [name], issuer: ca });
    await request(rks.app).post(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin)
      .send({ data: { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem, meta: { ttl: 300 } } }).expect(201);
    await request(rks.app).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-upstream-'));
    fs.writeFileSync(path.join(dir, 'rks-ca.pem'), rks.ca);
  });
  afterAll(async () => {
    for (const e of edges) await e.stop();
    await rks?.stop();
  });

  async function edge(upstream: string): Promise<number> {
    const port = await freePort();
    const e = runRks(['edge', '--listen', `127.0.0.1:${port}`, '--upstream', upstream, '--node-id', `up-${edges.length}`], {
      RKS_URL: rks.url,
      RKS_CA_CERT: path.join(dir, 'rks-ca.pem'),
      RKS_GROUP_TOKEN: groupToken,
    });
    edges.push(e);
    await e.waitFor('registered with rks');
    return port;
  }

  it('passes requests to an HTTP origin with the client\'s address and scheme, streams bodies, speaks HTTP/2', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const origin = http.createServer((req, res) => {
      seen.push(req.headers);
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        res.writeHead(201, { 'x-origin': 'yes', connection: 'keep-alive' });
        res.end(`${req.method} ${req.url} ${body.length}`);
      });
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    try {
      const port = await edge(`http://127.0.0.1:${(origin.address() as AddressInfo).port}`);
      // What a client claims of itself is replaced by what the edge saw.
      const one = await get(port, name, ca.certPem, { headers: { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6', 'x-forwarded-host': 'evil.example' } });
      expect(one).toMatchObject({ status: 201, body: 'GET /hello?x=1 0', headers: { 'x-origin': 'yes' } });
      expect(seen[0]).toMatchObject({ host: name, 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': name });
      expect(seen[0]).not.toHaveProperty('forwarded');
      expect(seen[0]).not.toHaveProperty('x-real-ip');
      const big = 'x'.repeat(3_000_000);
      expect((await get(port, name, ca.certPem, { method: 'POST', body: big, path: '/up' })).body).toBe(`POST /up ${big.length}`);

      const session = http2.connect(`https://${name}:${port}`, { ca: ca.certPem, servername: name, createConnection: () => tls.connect({ port, host: '127.0.0.1', servername: name, ca: ca.certPem, ALPNProtocols: ['h2'] }) });
      const h2 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': '/two', ':method': 'GET' });
        let status = 0;
        let body = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (d) => (body += d));
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
      });
      session.close();
      expect(h2).toEqual({ status: 201, body: 'GET /two 0' });
      expect(seen[2]).toMatchObject({ host: `${name}:${port}`, 'x-forwarded-proto': 'https' });
      // A connection holds one name: another Host on it, or an absolute URL, never reaches the origin.
      expect(await get(port, name, ca.certPem, { headers: { host: 'other.example.net' } })).toMatchObject({ status: 421 });
      expect(await get(port, name, ca.certPem, { path: 'http://other.example.net/x' })).toMatchObject({ status: 400 });
      expect(seen).toHaveLength(3);
    } finally {
      origin.close();
    }
  });

  it('answers 502 when the origin is down or answers what HTTP/2 cannot carry, and fails handshakes for names the node may not serve', async () => {
    const port = await edge(`http://127.0.0.1:${await freePort()}`);
    expect(await get(port, name, ca.certPem)).toMatchObject({ status: 502 });
    // The operator hears of it: the first at once, then a count a minute.
    await edges[edges.length - 1]!.waitFor('the origin did not answer', 5000);
    expect(edges[edges.length - 1]!.output()).toMatch(/"requests":1,"reasons":\["ECONNREFUSED"\]/);
    // An origin answering a status no client may get: 502, and the edge goes on.
    const odd = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n')));
    await new Promise<void>((r) => odd.listen(0, '127.0.0.1', r));
    try {
      const oddPort = await edge(`http://127.0.0.1:${(odd.address() as AddressInfo).port}`);
      const session = http2.connect(`https://${name}:${oddPort}`, { createConnection: () => tls.connect({ port: oddPort, host: '127.0.0.1', servername: name, ca: ca.certPem, ALPNProtocols: ['h2'] }) });
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': '/' });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.end();
      });
      session.close();
      expect(status).toBe(502);
      expect(await get(oddPort, name, ca.certPem)).toMatchObject({ status: 502 });
    } finally {
      odd.close();
    }
    await expect(get(port, 'stranger.example.net', ca.certPem)).rejects.toThrow(/alert|socket hang up|ECONNRESET|unrecognized|disconnected/i);
  });

  it('passes the bytes to a TCP origin after a PROXY protocol v2 header naming the client and the server name', async () => {
    const heads: Buffer[] = [];
    const origin = net.createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length < 16) return;
        const len = 16 + buf.readUInt16BE(14);
        // The header, then the client's whole request.
        if (buf.length < len || heads.length || !buf.subarray(len).includes('\r\n\r\n')) return;
        heads.push(buf.subarray(0, len));
        const rest = buf.subarray(len).toString();
        s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${rest.length}\r\nConnection: close\r\n\r\n${rest}`);
      });
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    try {
      const port = await edge(`tcp://127.0.0.1:${(origin.address() as AddressInfo).port}`);
      const answer = await get(port, name, ca.certPem, { path: '/raw' });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatch(/^GET \/raw HTTP\/1\.1\r\n/);
      const h = heads[0]!;
      expect(h.subarray(0, 12)).toEqual(Buffer.from('0d0a0d0a000d0a515549540a', 'hex'));
      expect([h[12], h[13]]).toEqual([0x21, 0x11]); // v2 PROXY, TCP over IPv4
      expect([...h.subarray(16, 20)]).toEqual([127, 0, 0, 1]);
      expect(h.readUInt16BE(26)).toBe(port); // the address the client reached
      // The TLV that names the server the client asked for.
      expect(h[28]).toBe(0x02);
      expect(h.subarray(31, 31 + h.readUInt16BE(29)).toString()).toBe(name);
    } finally {
      origin.close();
    }
  });

  it('refuses an upstream it cannot use, saying what it takes', async () => {
    for (const bad of ['ftp://x', 'tcp://127.0.0.1', 'http://127.0.0.1:1/path', 'nonsense']) {
      const e = runRks(['edge', '--listen', '127.0.0.1:0', '--upstream', bad, '--node-id', 'bad'], { RKS_URL: rks.url, RKS_GROUP_TOKEN: groupToken });
      expect(await e.exited).toBe(2);
      expect(e.output()).toMatch(/^rks: --upstream .*(http:\/\/|not a URL|no path)/m);
    }
  });
});
