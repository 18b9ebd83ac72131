import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RksNode } from '../../src/sdk';

/**
 * The SDK's answers to ACME HTTP-01 on an edge's port 80, against a stand-in for rks's two
 * endpoints (the listing, and the older one token at a time), so what the edge asks can be
 * counted and timed exactly.
 */
describe('RksNode ACME challenge answers', () => {
  let server: http.Server;
  let url: string;
  const asked: string[] = [];
  const held: http.ServerResponse[] = [];
  /** The challenges in progress, as rks would list them; null: an older rks without the listing. */
  let published: Map<string, string> | null = new Map();

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/rks/v1/node') return void res.writeHead(201, { 'Content-Type': 'application/json' }).end('{"nodeToken":"n","ttl":600}');
      asked.push(req.url!);
      const json = (status: number, body: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      const expiresAt = new Date(Date.now() + 60_000).toISOString();
      if (req.url === '/rks/v1/acme/http-01') {
        if (!published) return void json(404, { errors: ['not found'], code: 'not_found' });
        return void json(200, { challenges: [...published].map(([token, keyAuthorization]) => ({ token, keyAuthorization, expiresAt })) });
      }
      if (req.url!.endsWith('/known-token-0123456789')) return void json(200, { keyAuthorization: 'known-token-0123456789.thumb', expiresAt });
      held.push(res); // a slow rks: these answers wait
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    for (const res of held) res.writeHead(404).end();
    server.close();
  });
  beforeEach(() => {
    asked.length = 0;
    published = new Map([['known-token-0123456789', 'known-token-0123456789.thumb']]);
  });

  it('answers from the listing of challenges in progress, then from memory; malformed tokens never reach rks', async () => {
    const node = new RksNode({ url, groupToken: 'g', nodeId: 'e', revalidateMs: 0 });
    expect(await node.acmeChallenge('known-token-0123456789')).toBe('known-token-0123456789.thumb');
    expect(await node.acmeChallenge('known-token-0123456789')).toBe('known-token-0123456789.thumb');
    expect(await node.acmeChallenge('../../etc/passwd')).toBeNull();
    expect(asked).toEqual(['/rks/v1/acme/http-01']);
    node.stop();
  });

  it("1,000 strangers' made-up tokens cost rks a listing a second; the CA's token, published during the flood, is answered", async () => {
    const node = new RksNode({ url, groupToken: 'g', nodeId: 'e', revalidateMs: 0 });
    const started = Date.now();
    const flood = Array.from({ length: 1000 }, (_, i) =>
      new Promise((r) => setTimeout(r, i * 2)).then(() => node.acmeChallenge(`made-up-token-${String(i).padStart(6, '0')}`)),
    );
    // Half-way through, rks publishes an order's challenge and the CA fetches it at once.
    await new Promise((r) => setTimeout(r, 1000));
    published!.set('ca-token-0123456789abcdef', 'ca-token-0123456789abcdef.thumb');
    expect(await node.acmeChallenge('ca-token-0123456789abcdef')).toBe('ca-token-0123456789abcdef.thumb');
    expect((await Promise.all(flood)).every((a) => a === null)).toBe(true);
    const seconds = (Date.now() - started) / 1000;
    expect(asked.every((a) => a === '/rks/v1/acme/http-01')).toBe(true);
    expect(asked.length).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    node.stop();
  });

  it('an older rks without the listing is asked token by token, at most 8 at a time', async () => {
    published = null;
    const node = new RksNode({ url, groupToken: 'g', nodeId: 'e', revalidateMs: 0, timeoutMs: 2000 });
    expect(await node.acmeChallenge('known-token-0123456789')).toBe('known-token-0123456789.thumb');
    asked.length = 0;
    const answers = Array.from({ length: 30 }, (_, i) => node.acmeChallenge(`made-up-token-${String(i).padStart(4, '0')}-xxxx`).catch(() => null));
    await new Promise((r) => setTimeout(r, 300));
    expect(asked.length).toBe(8);
    expect((await Promise.all(answers)).every((a) => a === null)).toBe(true);
    node.stop();
  });
});
