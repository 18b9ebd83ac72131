import fs from 'node:fs';
import path from 'node:path';
import { Contract } from '../../src/http/contract';
import { SPEC_PATH } from '../../src/paths';

describe('Contract', () => {
  const contract = Contract.load(SPEC_PATH);
  const op = (method: string, path: string) => {
    const m = contract.match(method, path);
    if (!m || !('op' in m)) throw new Error(`no operation for ${method} ${path}`);
    return m;
  };

  it('finds operations by fixed path and by pattern, with their raw parameters', () => {
    expect(op('GET', '/healthz').op.id).toBe('health');
    expect(op('GET', '/rks/v1/secret/www.example.com')).toMatchObject({ op: { id: 'getSecret' }, params: { fqdn: 'www.example.com' } });
    expect(op('GET', '/rks/v1/secret/www.example.com/groups').op.id).toBe('listSecretGroups');
    expect(op('DELETE', '/rks/v1/group/edge/nodes/n-1')).toMatchObject({ op: { id: 'revokeNode' }, params: { group: 'edge', nodeId: 'n-1' } });
    expect(op('HEAD', '/healthz').op.id).toBe('health');
  });

  it('answers Allow for a known path with another method, null for an unknown path', () => {
    expect(contract.match('PATCH', '/rks/v1/secret/x.example.com')).toEqual({ allow: 'GET, PUT, POST, DELETE' });
    expect(contract.match('GET', '/rks/v1/nothing')).toBeNull();
    expect(contract.match('GET', '/rks/v1/secret/a/b/c')).toBeNull();
  });

  it('reads authentication, body kind and limits from the contract', () => {
    expect(op('POST', '/rks/v1/admin/login').op).toMatchObject({ security: [], body: 'json', bodyRequired: true });
    expect(op('GET', '/rks/v1/secret/x.example.com').op).toMatchObject({ security: [['vaultToken']], body: 'none', pskExempt: false });
    expect(op('POST', '/ca/sign').op).toMatchObject({ security: [['pskJwt'], ['vaultToken']], body: 'text', bodyLimit: '16kb' });
    expect(op('POST', '/ca/sign').op.check('body', '')).toEqual([expect.objectContaining({ path: 'body', keyword: 'minLength' })]);
    expect(op('GET', '/ca/cert').op.pskExempt).toBe(true);
  });

  it('checks parameters, query, headers and bodies, saying where', () => {
    const secret = op('POST', '/rks/v1/secret/x.example.com').op;
    expect(secret.check('params', { fqdn: 'x.example.com' })).toEqual([]);
    expect(secret.check('params', { fqdn: 'x' })).toEqual([expect.objectContaining({ path: 'params.fqdn', keyword: 'pattern' })]);
    expect(secret.check('query', { version: '1' })).toEqual([expect.objectContaining({ path: 'query', keyword: 'additionalProperties' })]);
    expect(secret.check('body', { data: { certificate: 'c' } })).toEqual([expect.objectContaining({ path: 'body.data.private_key', keyword: 'required' })]);
    const register = op('POST', '/rks/v1/node').op;
    expect(register.check('headers', {})).toEqual([expect.objectContaining({ path: 'headers.x-lcdn-nodeid', keyword: 'required' })]);
    expect(op('POST', '/ca/sign').op.check('query', { days: '30' })).toEqual([]);
    expect(op('POST', '/ca/sign').op.check('query', { days: 'soon' })).not.toEqual([]);
  });

  it('checks JSON answers against the status they are sent with', () => {
    const login = op('POST', '/rks/v1/admin/login').op;
    expect(login.checkAnswer(200, { adminToken: 'hvs.x' })).toEqual([]);
    expect(login.checkAnswer(200, { token: 'hvs.x' })).not.toEqual([]);
    expect(login.checkAnswer(429, { errors: ['slow down'], code: 'too_many_requests' })).toEqual([]);
    expect(login.checkAnswer(429, { errors: ['slow down'], code: 'made_up' })).not.toEqual([]);
    expect(login.checkAnswer(418, { errors: 'not an array' })).not.toEqual([]);
  });
});

describe('error codes', () => {
  it('the contract lists exactly the codes rks answers with', async () => {
    const { ERROR_CODES } = await import('../../src/errors');
    const { parse } = await import('yaml');
    const fs = await import('node:fs');
    const spec = parse(fs.readFileSync(SPEC_PATH, 'utf8'));
    expect(spec.components.schemas.Errors.properties.code.enum).toEqual([...ERROR_CODES]);
  });
});

describe('the contract and the package', () => {
  it('say the same version', () => {
    const yaml = fs.readFileSync(path.join(__dirname, '..', '..', 'openapi', 'rks.yaml'), 'utf8');
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    expect(/^info:\n(?: {2}.*\n)*? {2}version: (\S+)$/m.exec(yaml)?.[1]).toBe(pkg.version);
  });
});
