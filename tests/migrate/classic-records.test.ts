import { classicRegInfo, classicSecretList, goField } from '../../src/migrate/classic-records';
import { patternReaches } from '../../src/vault/layout';

/** Reading the classic's records the way its Go decoder (mapstructure) reads them. */
describe('classic records', () => {
  it('finds a field by its Go name first, else by any casing; several casings are ambiguous', () => {
    expect(goField({ Secrets: [1], secrets: [2] }, 'Secrets')).toEqual({ value: [1] });
    expect(goField({ secrets: [2] }, 'Secrets')).toEqual({ value: [2] });
    expect(goField({ secrets: [2], SECRETS: [3] }, 'Secrets')).toEqual({ ambiguous: ['secrets', 'SECRETS'] });
    expect(goField({ other: 1 }, 'Secrets')).toBeNull();
  });

  it('reads a secret list as the classic writes it, and says why when it cannot', () => {
    expect(classicSecretList({ Secrets: ['a.example.com', '*'] })).toEqual({ entries: ['a.example.com', '*'] });
    expect(classicSecretList({ secrets: ['a.example.com'] })).toEqual({ entries: ['a.example.com'] });
    expect(classicSecretList(null)).toEqual({ entries: [] });
    expect(classicSecretList({ Secrets: null })).toEqual({ entries: [] });
    expect(classicSecretList({ Secrets: 'a.example.com' })).toEqual({ unreadable: 'its Secrets field is not a list' });
    expect(classicSecretList({ Secrets: [], secrets: ['x'] })).toEqual({ entries: [] });
    expect(classicSecretList({ sEcrets: [], secrets: ['x'] })).toMatchObject({ unreadable: expect.stringContaining('several keys') });
  });

  it('reads a group config in the Go field names into rks\'s shape', () => {
    expect(classicRegInfo({ CallbackURL: 'https://m/cb', OauthURL: 'https://m/t', OauthClientID: 'id', OauthClientSecret: 's' })).toEqual({
      info: { callbackURL: 'https://m/cb', oauthURL: 'https://m/t', oauthClientID: 'id', oauthClientSecret: 's' },
    });
    expect(classicRegInfo({ callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' })).toEqual({
      info: { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' },
    });
    expect(classicRegInfo({})).toEqual({ info: { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' } });
    expect(classicRegInfo({ CallbackURL: 7 })).toEqual({ unreadable: 'its CallbackURL is not a string' });
    expect(classicRegInfo('x')).toEqual({ unreadable: 'the record is not an object' });
  });

  it('tells which role policy patterns can give an rks policy', () => {
    for (const p of ['rks_admin', 'RKS_admin', 'rks_*', 'r*', '*', '*_admin', 'rks_node_a']) expect([p, patternReaches(p, 'rks_')]).toEqual([p, true]);
    for (const p of ['admin', 'a-node', 'x*', 'rks', 'rksadmin', 'rk-*']) expect([p, patternReaches(p, 'rks_')]).toEqual([p, false]);
  });
});
