import express from 'express';
import request from 'supertest';
import * as errors from '../../src/errors';
import { errorHandler, toHttp } from '../../src/http/errors';
import { createLogger } from '../../src/log';
import { VaultError } from '../../src/vault/client';

/** What Vault's refusals become for rks's callers. */
describe('toHttp', () => {
  it('a request past Vault\'s limits is refused for good (409, no Retry-After), not an outage to retry', () => {
    const answer = toHttp(new VaultError(500, ['JSON array exceeds allowed element count'], 'kv.write'));
    expect(answer).toMatchObject({ status: 409, code: 'conflict' });
    expect(answer.headers).toBeUndefined();
  });

  it('a token Vault cannot parse is a 403; Vault failing is a 503 to retry', () => {
    expect(toHttp(new VaultError(500, ['error performing token check: bad token'], 'kv.read'))).toMatchObject({ status: 403, code: 'forbidden' });
    expect(toHttp(new VaultError(500, ['internal error'], 'kv.read'))).toMatchObject({ status: 503, code: 'unavailable', headers: { 'Retry-After': '1' } });
    expect(toHttp(new VaultError(503, ['Vault is sealed'], 'kv.read'))).toMatchObject({ status: 503 });
  });
});

/** Every error a request meets, as the caller and the log see it. */
describe('errorHandler', () => {
  const answer = async (err: unknown) => {
    const lines: Record<string, unknown>[] = [];
    const app = express();
    app.get('/', () => {
      throw err;
    });
    app.use(errorHandler(createLogger('debug', { write: (l: string) => void lines.push(JSON.parse(l)) })));
    const res = await request(app).get('/');
    return { status: res.status, body: res.body, headers: res.headers, lines };
  };

  it('a typed error keeps its status, reason, code and headers, logged at debug', async () => {
    const res = await answer(new errors.TooManyRequests('slow down', 2.2));
    expect([res.status, res.body, res.headers['retry-after']]).toEqual([429, { errors: ['slow down'], code: 'too_many_requests' }, '3']);
    expect(res.lines.map((l) => l.level)).toEqual(['debug']);
  });

  it('a contract violation names the rule, never what the caller sent', async () => {
    const res = await answer(
      new errors.ValidationFailed([
        { path: 'query', keyword: 'additionalProperties', message: "must NOT have additional properties 'hvs.leaked'" },
        { path: 'params.fqdn', keyword: 'pattern', message: 'must match pattern "^x$"' },
        { path: 'body.data.meta.ttl', keyword: 'type', message: 'must be integer' },
      ]),
    );
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual(['unknown query parameter', expect.stringMatching(/^invalid secret name: must be /), 'body.data.meta.ttl: must be integer']);
    expect(JSON.stringify(res)).not.toContain('hvs.leaked');
  });

  it('an upstream failing is a 502 and one warning without a stack; an unknown error a 500 that tells nothing', async () => {
    const upstream = await answer(new errors.BadGateway('callback refused: 500'));
    expect([upstream.status, upstream.lines.map((l) => [l.level, l.msg, 'err' in l])]).toEqual([502, [['warn', 'an upstream failed', false]]]);
    const bug = await answer(new Error('secret detail hvs.inside'));
    expect([bug.status, bug.body]).toEqual([500, { errors: ['internal error'], code: 'internal' }]);
    expect(JSON.stringify(bug.body)).not.toContain('hvs.inside');
    expect(bug.lines.map((l) => l.level)).toEqual(['error']);
  });

  it("body-parser's refusals are the caller's: 413, 400, 415", async () => {
    expect((await answer(Object.assign(new Error('x'), { type: 'entity.too.large', status: 413 }))).body).toEqual({ errors: ['request body too large'], code: 'body_too_large' });
    expect((await answer(Object.assign(new Error('x'), { type: 'entity.parse.failed', status: 400 }))).body.errors).toEqual(['request body is not valid JSON']);
    expect((await answer(Object.assign(new Error('x'), { type: 'charset.unsupported', status: 415 }))).status).toBe(415);
  });
});
