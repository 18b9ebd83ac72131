import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RksNode } from '../../src/sdk';

/**
 * What the SDK asks of rks while it learns which names it may serve, against a stand-in for
 * rks whose answers wait until the test lets them go, so the order of events is exact.
 */
describe('RksNode names it may serve', () => {
  let server: http.Server;
  let url: string;
  const asked: string[] = [];
  let releaseListing: (() => void) | undefined;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const json = (status: number, body: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/rks/v1/node') return void json(201, { nodeToken: 'n', ttl: 600 });
      const path = req.url!.split('?')[0]!;
      asked.push(path);
      if (path === '/rks/v1/node/secrets') return void (releaseListing = () => json(200, { secrets: ['a.example.com'] }));
      json(403, { errors: ['no'], code: 'forbidden' });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  it('a handshake that comes while the first listing is on its way waits for it instead of failing', async () => {
    const node = new RksNode({ url, groupToken: 'g', nodeId: 'e', revalidateMs: 0 });
    const started = node.start();
    while (!releaseListing) await new Promise((r) => setTimeout(r, 5));
    const lookup = node.secretFor('a.example.com');
    await new Promise((r) => setTimeout(r, 50));
    releaseListing();
    await started;
    await lookup;
    // The name was listed, so its key was asked for (this stand-in refuses it).
    expect(asked.slice(0, 2)).toEqual(['/rks/v1/node/secrets', '/rks/v1/secret/a.example.com']);
    node.stop();
  });
});
