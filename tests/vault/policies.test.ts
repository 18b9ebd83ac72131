import { groupTokenPolicy, nodePolicy, servicePolicy } from '../../src/vault/policies';

describe('Vault policies', () => {
  it('writes a node policy of the same few lines at any group size', () => {
    expect(nodePolicy('edge')).toContain('path "rks/data/groups/edge/secrets/*"');
    expect(nodePolicy('edge')).not.toContain('rks/data/*');
    expect(nodePolicy('edge').length).toBeLessThan(600);
  });

  it("grants rks's identity managed secrets by their folders, never a pushed secret or its copies", () => {
    expect(servicePolicy).toContain('path "rks/data/managed/secrets/*"');
    expect(servicePolicy).toContain('path "rks/data/groups/+/managed/*"');
    expect(servicePolicy).not.toMatch(/path "rks\/data\/(\*|\+)|path "rks\/data\/groups\/\+\/secrets/);
  });

  it('writes no policy from a group name that breaks the rules', () => {
    for (const g of ['Edge', 'a_b', 'a/b', '*', '', 'x" {\n  capabilities = ["read"]\n}\npath "rks/data/*']) {
      expect(() => nodePolicy(g)).toThrow(/refusing to put group name/);
      expect(() => groupTokenPolicy(g)).toThrow(/refusing to put group name/);
    }
  });
});
