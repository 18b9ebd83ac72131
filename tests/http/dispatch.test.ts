import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import { Contract } from '../../src/http/contract';
import { Handlers, dispatch } from '../../src/http/dispatch';
import { errorHandler } from '../../src/http/errors';
import { createLogger } from '../../src/log';
import { PskJwt } from '../../src/pki/psk';

/** A contract of four operations, one per kind of security and body the dispatcher knows. */
const SPEC = `
openapi: 3.0.3
info: { title: dispatch test, version: 1.0.0 }
security:
  - vaultToken: []
paths:
  /open:
    get:
      operationId: open
      security: []
      x-rks-psk-exempt: true
      responses: { '200': { description: ok } }
  /things/{name}:
    parameters:
      - { name: name, in: path, required: true, schema: { type: string, pattern: '^[a-z]+$' } }
    get:
      operationId: getThing
      parameters:
        - { name: n, in: query, required: false, schema: { type: integer, minimum: 1, maximum: 5 } }
      responses: { '200': { description: ok } }
    post:
      operationId: putThing
      requestBody:
        required: true
        content:
          application/json:
            schema: { type: object, required: [size], additionalProperties: false, properties: { size: { type: integer } } }
      responses: { '201': { description: ok } }
  /sign:
    post:
      operationId: sign
      x-rks-body-limit: 1kb
      security:
        - pskJwt: []
        - vaultToken: []
      requestBody:
        required: true
        content:
          text/plain:
            schema: { type: string, minLength: 1 }
      responses: { '200': { description: ok } }
components:
  securitySchemes:
    pskJwt: { type: http, scheme: bearer }
    vaultToken: { type: apiKey, in: header, name: X-Vault-Token }
`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-dispatch-'));
const specFile = path.join(dir, 'spec.yaml');
fs.writeFileSync(specFile, SPEC);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const PSK = 'dispatch-test-psk-Qm7xT2vLp9';
const psk = new PskJwt(PSK);

/** Each handler answers what the dispatcher gave it. */
const handlers: Handlers = {
  open: (_req, res, token, scheme) => void res.json({ token, scheme }),
  getThing: (req, res, token, scheme) => void res.json({ name: req.params.name, query: req.query, token, scheme }),
  putThing: (req, res, _token, scheme) => void res.status(201).json({ body: req.body, scheme }),
  sign: (req, res, token, scheme) => void res.json({ body: req.body, token, scheme }),
};

function app(opts: { psk?: PskJwt; requirePsk?: boolean } = {}, h: Handlers = handlers) {
  const a = express();
  a.use(dispatch(Contract.load(specFile), h, { bodyLimit: '4kb', ...opts }));
  a.use((_req, res) => void res.status(404).json({ errors: ['not here'] }));
  a.use(errorHandler(createLogger('silent')));
  return a;
}

describe('dispatch', () => {
  it('refuses to start when handlers and contract disagree', () => {
    const { sign: _sign, ...missing } = handlers;
    expect(() => app({}, missing)).toThrow(/no handler for the contract's operation sign/);
    expect(() => app({}, { ...handlers, extra: () => undefined })).toThrow(/handler extra is not in the contract/);
  });

  it('passes paths it does not know on, and answers 405 with Allow for a known path', async () => {
    expect((await request(app()).get('/elsewhere')).body).toEqual({ errors: ['not here'] });
    const res = await request(app()).delete('/things/abc');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, POST');
  });

  it('admits without credentials where the contract has no security, and says so to the handler', async () => {
    expect((await request(app()).get('/open')).body).toEqual({ token: '', scheme: 'none' });
  });

  it('needs the token where the contract says vaultToken: 403 without it, the token handed on with it', async () => {
    const refused = await request(app()).get('/things/abc');
    expect(refused.status).toBe(403);
    expect(refused.body.errors).toEqual(['missing X-Vault-Token']);
    const res = await request(app()).get('/things/abc?n=3').set('X-Vault-Token', 'hvs.x');
    expect(res.body).toEqual({ name: 'abc', query: { n: 3 }, token: 'hvs.x', scheme: 'vaultToken' });
  });

  it('takes either alternative of pskJwt or vaultToken, verifying the JWT itself', async () => {
    const jwt = await psk.signRequest(60);
    const byPsk = await request(app({ psk })).post('/sign').set('Authorization', `Bearer ${jwt}`).type('text').send('PEM');
    expect(byPsk.body).toEqual({ body: 'PEM', token: '', scheme: 'pskJwt' });
    const byToken = await request(app({ psk })).post('/sign').set('X-Vault-Token', 'hvs.x').type('text').send('PEM');
    expect(byToken.body).toEqual({ body: 'PEM', token: 'hvs.x', scheme: 'vaultToken' });

    const forged = await request(app({ psk })).post('/sign').set('Authorization', `Bearer ${await new PskJwt('another-psk-8Hq2wLz').signRequest(60)}`).type('text').send('PEM');
    expect(forged.status).toBe(401);
    const neither = await request(app({ psk })).post('/sign').type('text').send('PEM');
    expect([neither.status, neither.body.errors]).toEqual([401, ['a PSK JWT (Authorization: Bearer) or an X-Vault-Token is required']]);
    // The token rks hands anyone to vouch for its CA admits no one.
    const fingerprint = await request(app({ psk })).post('/sign').set('Authorization', `Bearer ${await psk.signFingerprint('AB:CD', 60)}`).type('text').send('PEM');
    expect([fingerprint.status, fingerprint.body.errors]).toEqual([401, ['invalid PSK token: it is a CA fingerprint (it vouches for the CA and admits no one), not a request token']]);
    const noPsk = await request(app()).post('/sign').set('Authorization', `Bearer ${jwt}`).type('text').send('PEM');
    expect([noPsk.status, noPsk.body.errors]).toEqual([401, ['no PSK is configured on this rks; use an X-Vault-Token']]);
  });

  it('with --require-psk every operation but the exempt ones needs a valid PSK JWT as well', async () => {
    const strict = app({ psk, requirePsk: true });
    expect((await request(strict).get('/open')).status).toBe(200);
    const without = await request(strict).get('/things/abc').set('X-Vault-Token', 'hvs.x');
    expect([without.status, without.body.errors]).toEqual([401, ['this rks requires a PSK JWT in Authorization: Bearer']]);
    const jwt = await psk.signRequest(60);
    const both = await request(strict).get('/things/abc').set('X-Vault-Token', 'hvs.x').set('Authorization', `Bearer ${jwt}`);
    expect(both.body).toMatchObject({ token: 'hvs.x', scheme: 'vaultToken' });
  });

  it('checks path, query and body against the contract before any handler runs', async () => {
    const token = { 'X-Vault-Token': 'hvs.x' };
    expect((await request(app()).get('/things/ABC').set(token)).status).toBe(400);
    expect((await request(app()).get('/things/abc?n=9').set(token)).status).toBe(400);
    expect((await request(app()).get('/things/abc?other=1').set(token)).body.errors).toEqual(['unknown query parameter']);
    expect((await request(app()).get('/things/%E0%A4%A').set(token)).body.errors).toEqual(['the path is not validly percent-encoded']);
    expect((await request(app()).post('/things/abc').set(token).send({ size: 'big' })).status).toBe(400);
    expect((await request(app()).post('/things/abc').set(token).send({ size: 1, extra: true })).body.errors).toEqual(['body: unknown field']);
    expect((await request(app()).post('/things/abc').set(token)).body.errors).toEqual(['request body is required']);
    expect((await request(app()).post('/things/abc').set(token).send({ size: 1 })).body).toEqual({ body: { size: 1 }, scheme: 'vaultToken' });
    expect((await request(app()).post('/sign').set(token).type('text').send('')).body.errors).toEqual(['request body is required']);
  });

  it('refuses ambiguous or unreadable input: a credential twice, compressed or non-JSON bodies, oversized ones', async () => {
    const twice = await request(app()).get('/things/abc').set('X-Vault-Token', ['a', 'b'] as unknown as string);
    expect([twice.status, twice.body.errors]).toEqual([400, ['X-Vault-Token given more than once']]);
    const gz = await request(app()).post('/things/abc').set('X-Vault-Token', 'hvs.x').set('Content-Encoding', 'gzip').type('json').send('{}');
    expect(gz.body.errors).toEqual(['Content-Encoding is not supported; send the body uncompressed']);
    const form = await request(app()).post('/things/abc').set('X-Vault-Token', 'hvs.x').type('form').send('size=1');
    expect([form.status, form.body.errors]).toEqual([415, ['request body must be application/json']]);
    const big = await request(app()).post('/sign').set('X-Vault-Token', 'hvs.x').type('text').send('x'.repeat(2048));
    expect([big.status, big.body.errors]).toEqual([413, ['request body too large']]);
  });
});
