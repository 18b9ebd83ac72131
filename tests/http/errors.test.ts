import { toHttp } from '../../src/http/errors';
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
