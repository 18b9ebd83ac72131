import express from 'express';
import request from 'supertest';
import { answerJson, requestContext, requestLogger } from '../../src/http/context';
import { createLogger } from '../../src/log';
import { createMetrics } from '../../src/metrics';

/** What every request gets before and after its operation: an id, the API's headers, one log line, metrics. */
describe('requestContext', () => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l)) });
  const metrics = createMetrics(undefined, false);
  const app = express();
  app.use(requestContext(logger, metrics));
  requestLogger(app.request, logger);
  app.get('/rks/v1/secret/:fqdn', (req, res) => {
    res.locals.route = '/rks/v1/secret/{fqdn}';
    req.log.info('inside');
    answerJson.call(res, { ok: true });
  });
  app.get('/boom', (_req, res) => void res.status(500).end());
  app.get('/down', (_req, res) => void res.status(503).end());
  app.use((_req, res) => void answerJson.call(res.status(404), { errors: ['not found'] }));
  beforeEach(() => (lines.length = 0));

  it("keeps a caller's well-formed request id and makes one otherwise", async () => {
    expect((await request(app).get('/rks/v1/secret/a.example.com').set('X-Request-Id', 'abc-123')).headers['x-request-id']).toBe('abc-123');
    for (const bad of ['a b', 'x'.repeat(65), 'é']) {
      expect((await request(app).get('/rks/v1/secret/a.example.com').set('X-Request-Id', bad)).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('sets the API headers on every answer, those of unmatched paths included', async () => {
    for (const path of ['/rks/v1/secret/a.example.com', '/nowhere']) {
      const res = await request(app).get(path);
      expect(res.headers).toMatchObject({
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
        'strict-transport-security': 'max-age=31536000; includeSubDomains',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
      });
    }
  });

  it('logs one line per request with the id, the path without its query, and the level its status deserves', async () => {
    await request(app).get('/rks/v1/secret/a.example.com?token=hvs.secret').set('X-Request-Id', 'r-1');
    const done = lines.filter((l) => l.msg === 'request completed');
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ level: 'info', req: { id: 'r-1', method: 'GET', url: '/rks/v1/secret/a.example.com?[redacted]' }, res: { statusCode: 200 } });
    expect(lines.find((l) => l.msg === 'inside')).toMatchObject({ req: { id: 'r-1' } });
    expect(JSON.stringify(lines)).not.toContain('hvs.secret');
    await request(app).get('/boom');
    await request(app).get('/down');
    expect(lines.filter((l) => l.msg === 'request completed').map((l) => l.level)).toEqual(['info', 'error', 'warn']);
  });

  it("labels metrics with the contract's path, never the names in the raw path", async () => {
    await request(app).get('/rks/v1/secret/secret-name.example.com');
    await request(app).get('/unknown/other-name.example.com');
    const text = await metrics.registry.metrics();
    expect(text).toContain('rks_http_requests_total{method="GET",route="/rks/v1/secret/{fqdn}",status="200"}');
    expect(text).toContain('route="unmatched",status="404"');
    expect(text).not.toContain('name.example.com');
  });

  it('answerJson sends JSON with its length and no ETag', async () => {
    const res = await request(app).get('/rks/v1/secret/a.example.com');
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength('{"ok":true}')));
    expect(res.headers.etag).toBeUndefined();
  });
});
