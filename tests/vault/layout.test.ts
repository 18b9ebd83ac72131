import { groupsIn, kvPath, nodePolicyName, nodeRoleName } from '../../src/vault/layout';

/** Names read back from Vault pass the API's rules where they become paths and policies, whoever the caller. */
describe('Vault layout', () => {
  const junk = ['*', 'rks/data/*', 'x" {\n  capabilities = ["read"]\n}\npath "rks/data/*', 'A.example.com', 'example', 'a+b.example.com', ''];

  it('makes copies of plain secret names only', () => {
    for (const name of junk) expect(() => kvPath.groupCopy('edge', name)).toThrow(/refusing to put secret name/);
    for (const name of junk) expect(() => kvPath.managedSecret(name)).toThrow(/refusing to put secret name/);
    for (const name of junk) expect(() => kvPath.managedDueMark(1, name)).toThrow(/refusing to put secret name/);
  });

  it('builds no path or name from a group or node that breaks the rules', () => {
    for (const g of ['Edge', 'a_b', 'a/b', '*', '']) {
      expect(() => kvPath.groupSecrets(g)).toThrow(/refusing to put group name/);
      expect(() => kvPath.groupCopies(g)).toThrow(/refusing to put group name/);
      expect(() => nodePolicyName(g)).toThrow(/refusing/);
    }
    expect(() => nodeRoleName('edge', 'N1')).toThrow(/refusing to put node id/);
    expect(() => kvPath.secret('*')).toThrow(/refusing/);
    expect(() => kvPath.secretGroups('example')).toThrow(/refusing/);
    expect(kvPath.groupNode('edge', 'n-1')).toBe('groups/edge/nodes/n-1');
  });

  it('lists only rks group names from a listing of groups/', () => {
    expect(groupsIn(['edge/', 'Edge/', 'x_y/', 'plain', 'b-2/'])).toEqual(['edge', 'b-2']);
  });
});
