import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CliError, RksHttp } from '../../src/cli/http';

describe('the CLI\'s HTTP client', () => {
  let server: http.Server;
  let url: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/busy') res.writeHead(429, { 'Retry-After': '42', 'Content-Type': 'application/json' }).end('{"errors":["too many failed logins"],"code":"too_many_requests"}');
      else res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":["nothing here"],"code":"not_found"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  it('a 429 says how long to wait, from Retry-After, and keeps the server\'s code', async () => {
    const err = await new RksHttp({ url }).request('GET', '/busy').catch((e: CliError) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).message).toBe('429: too many failed logins (retry in 42 s)');
    expect((err as CliError).code).toBe('too_many_requests');
    expect((err as CliError).exitCode).toBe(1);
  });

  it('raw hands back error answers instead of throwing', async () => {
    expect((await new RksHttp({ url }).raw('GET', '/x')).status).toBe(404);
  });
});
