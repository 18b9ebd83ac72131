import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RksNode } from '../../src/client';

/** The SDK's answers to ACME HTTP-01 on an edge's port 80, against a stand-in rks. */
describe('RksNode ACME challenge answers', () => {
  let server: http.Server;
  let url: string;
  const asked: string[] = [];
  const held: http.ServerResponse[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/rks/v1/node') return void res.writeHead(201, { 'Content-Type': 'application/json' }).end('{"nodeToken":"n","ttl":600}');
      asked.push(req.url!);
      if (req.url!.endsWith('/known-token-0123456789')) {
        return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keyAuthorization: 'known-token-0123456789.thumb', fqdn: 'a.example.com', expiresAt: new Date(Date.now() + 60_000).toISOString() }));
      }
      held.push(res); // a slow rks: these answers wait
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    for (const res of held) res.writeHead(404).end();
    server.close();
  });

  it('answers a known token once from rks, then from memory; malformed tokens never reach rks', async () => {
    const node = new RksNode({ url, groupToken: 'g', nodeId: 'e', revalidateMs: 0 });
    expect(await node.acmeChallenge('known-token-0123456789')).toBe('known-token-0123456789.thumb');
    expect(await node.acmeChallenge('known-token-0123456789')).toBe('known-token-0123456789.thumb');
    expect(await node.acmeChallenge('../../etc/passwd')).toBeNull();
    expect(asked).toEqual(['/rks/v1/acme/http-01/known-token-0123456789']);
    node.stop();
  });

  it('strangers knocking with made-up tokens cause at most 8 questions to rks at a time', async () => {
    const node = new RksNode({ url, groupToken: 'g', nodeId: 'e', revalidateMs: 0, timeoutMs: 2000 });
    asked.length = 0;
    const answers = Array.from({ length: 30 }, (_, i) => node.acmeChallenge(`made-up-token-${String(i).padStart(4, '0')}-xxxx`).catch(() => null));
    await new Promise((r) => setTimeout(r, 300));
    expect(asked.length).toBe(8);
    expect((await Promise.all(answers)).every((a) => a === null)).toBe(true);
    node.stop();
  });
});
