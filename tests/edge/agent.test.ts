import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { RksNode } from '../../src/sdk';
import { EdgeAgent } from '../../src/edge/agent';
import { proxyV2Header } from '../../src/edge/upstream';

/** A node that holds one name (the agent's socket API is what is under test here). */
function nodeHolding(name: string): RksNode & EventEmitter {
  const node = new EventEmitter() as RksNode & EventEmitter;
  const asked: string[] = [];
  Object.assign(node, {
    asked,
    secretFor: async (n: string) => {
      asked.push(n);
      return n === name ? { name, certificate: 'CERT\n', privateKey: 'KEY\n', ttl: 60, expiresAt: Date.now() + 60_000 } : null;
    },
    httpHandler: (_req: http.IncomingMessage, res: http.ServerResponse) => res.end('challenge'),
  });
  return node;
}

function ask(socketPath: string, p: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath, path: p, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    }).on('error', reject);
  });
}

describe('the edge agent\'s socket', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-agent-unit-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('answers a handshake\'s name with the chain and key, refuses other names and junk without asking the node', async () => {
    const node = nodeHolding('www.example.com');
    const sock = path.join(dir, 'edge.sock');
    const agent = new EdgeAgent(node, sock);
    await agent.listen();
    try {
      expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
      const ok = await ask(sock, '/v1/certificate/www.example.com');
      expect(ok).toMatchObject({ status: 200, body: 'CERT\nKEY\n', headers: { 'x-rks-name': 'www.example.com', 'cache-control': 'no-store' } });
      expect(Number(ok.headers['x-rks-expires-in'])).toBeGreaterThan(55);
      expect((await ask(sock, '/v1/certificate/other.example.com')).status).toBe(404);
      for (const junk of ['/v1/certificate/a%0Ab', '/v1/certificate/%E0%A4%A', `/v1/certificate/${'a'.repeat(300)}`, '/v1/certificate/a..b']) {
        expect((await ask(sock, junk)).status).toBe(400);
      }
      expect((node as unknown as { asked: string[] }).asked).toEqual(['www.example.com', 'other.example.com']);
      expect((await ask(sock, '/.well-known/acme-challenge/abc')).body).toBe('challenge');
      expect((await ask(sock, '/anything')).status).toBe(404);
    } finally {
      await agent.close();
    }
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('moves its generation when keys are withdrawn', async () => {
    const node = nodeHolding('www.example.com');
    const sock = path.join(dir, 'edge.sock');
    const agent = new EdgeAgent(node, sock);
    await agent.listen();
    try {
      const before = Number((await ask(sock, '/v1/generation')).body);
      node.emit('withdrawn', { names: ['www.example.com'] });
      expect(Number((await ask(sock, '/v1/generation')).body)).toBe(before + 1);
    } finally {
      await agent.close();
    }
  });

  it('takes over the socket of an agent that died, never one that is alive or a file that is not a socket', async () => {
    const sock = path.join(dir, 'edge.sock');
    const first = new EdgeAgent(nodeHolding('a.example.com'), sock);
    await first.listen();
    await expect(new EdgeAgent(nodeHolding('b.example.com'), sock).listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect((await ask(sock, '/v1/certificate/a.example.com')).status).toBe(200);
    await first.close();
    // A socket file left behind by a process that died (bound, then gone without removing it).
    execFileSync('python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', sock]);
    expect(fs.lstatSync(sock).isSocket()).toBe(true);
    const second = new EdgeAgent(nodeHolding('b.example.com'), sock);
    await second.listen();
    expect((await ask(sock, '/v1/certificate/b.example.com')).status).toBe(200);
    await second.close();
    fs.writeFileSync(sock, 'not a socket');
    await expect(new EdgeAgent(nodeHolding('b.example.com'), sock).listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(fs.readFileSync(sock, 'utf8')).toBe('not a socket');
  });
});

describe('the PROXY protocol v2 header', () => {
  it('names IPv6 peers, and says "unknown" when the two sides are of different families', () => {
    const v6 = proxyV2Header({ remoteAddress: '2001:db8::1', remotePort: 1234, localAddress: '::1', localPort: 443 });
    expect([v6[12], v6[13], v6.readUInt16BE(14)]).toEqual([0x21, 0x21, 36]);
    expect(v6.subarray(16, 32).toString('hex')).toBe('20010db8000000000000000000000001');
    expect(v6.subarray(32, 48).toString('hex')).toBe('00000000000000000000000000000001');
    expect([v6.readUInt16BE(48), v6.readUInt16BE(50)]).toEqual([1234, 443]);
    const mixed = proxyV2Header({ remoteAddress: '10.0.0.1', remotePort: 1, localAddress: '::1', localPort: 2 });
    expect([mixed[13], mixed.readUInt16BE(14)]).toEqual([0x00, 0]);
    const mapped = proxyV2Header({ remoteAddress: '::ffff:10.0.0.1', remotePort: 1, localAddress: '::ffff:10.0.0.2', localPort: 2 });
    expect(mapped[13]).toBe(0x11);
    const dotted = proxyV2Header({ remoteAddress: '64:ff9b::192.0.2.33', remotePort: 1, localAddress: '::1', localPort: 2 });
    expect(dotted.subarray(16, 32).toString('hex')).toBe('0064ff9b0000000000000000c0000221');
  });
});
