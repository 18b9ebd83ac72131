import { NotFound } from '../../src/errors';
import { GroupService } from '../../src/groups/service';
import { MemoryKv, MemoryPolicies, MemoryTokens } from '../support/memory-vault';
import { NO_CALLBACK } from '../support/constants';

/** The group rules against an in-memory Vault (the same rules run against a real one in *.vault.test.ts). */
describe('GroupService (in memory)', () => {
  let kv: MemoryKv;
  let tokens: MemoryTokens;
  let policies: MemoryPolicies;
  let groups: GroupService;
  let admin: string;
  beforeEach(() => {
    kv = new MemoryKv();
    tokens = new MemoryTokens();
    policies = new MemoryPolicies();
    groups = new GroupService(kv, policies, tokens);
    admin = tokens.issue(['rks_admin']);
  });
  // Stored as a push stores it: the association rules look at the certificate's expiry only.
  const secret = (fqdn: string, notAfter = '2999-01-01T00:00:00.000Z') => kv.write(fqdn, { certificate: 'c', private_key: 'k', info: { notAfter } }, admin);

  it('creates a group: its config, an empty secret list, its policies, its token and the accessor apart', async () => {
    const groupToken = await groups.create(admin, 'Edge', NO_CALLBACK);
    expect(tokens.live(groupToken)).toBe(true);
    expect((await kv.read('groups/edge/config'))?.data).toEqual(NO_CALLBACK);
    expect((await kv.read('groups/edge/secret-list'))?.data).toEqual({ secrets: [] });
    expect(policies.policies.has('rks_node_edge')).toBe(true);
    expect(policies.policies.get('rks_grouptoken_edge')).toContain('auth/token/create/rks_node_edge_*');
    const accessor = (await kv.read<{ accessor: string }>('groups/edge/grouptoken-accessor'))?.data.accessor;
    expect(accessor).toBe(tokens.tokens.get(groupToken)?.accessor);
    await expect(groups.create(admin, 'edge', NO_CALLBACK)).rejects.toMatchObject({ status: 409, code: 'already_exists' });
  });

  it('associations survive a concurrent writer: check-and-set retries, no lost update, the policy follows the list', async () => {
    await groups.create(admin, 'edge', NO_CALLBACK);
    await secret('a.example.com');
    await secret('b.example.com');
    let raced = false;
    kv.beforeWrite = async (path) => {
      if (path === 'groups/edge/secret-list' && !raced) {
        raced = true;
        // Another rks instance adds b between our read and our write.
        const current = (await kv.read<{ secrets: string[] }>(path))!;
        kv.entries.set(path, { data: { secrets: [...current.data.secrets, 'b.example.com'] }, version: current.version + 1 });
      }
    };
    await groups.associate(admin, 'edge', 'a.example.com');
    expect(raced).toBe(true);
    expect(await groups.secrets(admin, 'edge')).toEqual(['a.example.com', 'b.example.com']);
    expect(policies.policies.get('rks_node_edge')).toContain('rks/data/a.example.com');
    expect(policies.policies.get('rks_node_edge')).toContain('rks/data/b.example.com');
  });

  it('refuses what does not exist or is already so, by code', async () => {
    await groups.create(admin, 'edge', NO_CALLBACK);
    await expect(groups.associate(admin, 'edge', 'none.example.com')).rejects.toBeInstanceOf(NotFound);
    await expect(groups.associate(admin, 'nogroup', 'none.example.com')).rejects.toBeInstanceOf(NotFound);
    await secret('a.example.com');
    await groups.associate(admin, 'edge', 'a.example.com');
    await expect(groups.associate(admin, 'edge', 'a.example.com')).rejects.toMatchObject({ code: 'already_associated' });
    await groups.dissociate(admin, 'edge', 'a.example.com');
    await expect(groups.dissociate(admin, 'edge', 'a.example.com')).rejects.toBeInstanceOf(NotFound);
    expect((await kv.read<{ groups: string[] }>('index/secret-groups/a.example.com'))?.data.groups).toEqual([]);
  });

  it('rotating the token revokes the old one and every node under it', async () => {
    const old = await groups.create(admin, 'edge', NO_CALLBACK);
    await tokens.writeRole('rks_node_edge_n1', { allowed_policies: ['rks_node_edge'], orphan: false, token_period: 600, renewable: true, token_no_default_policy: true, token_type: 'service' }, admin);
    const node = (await tokens.createFromRole('rks_node_edge_n1', old, { groupname: 'edge', nodeid: 'n1' })).token;
    const fresh = await groups.rotateGroupToken(admin, 'edge');
    expect([tokens.live(old), tokens.live(node), tokens.live(fresh)]).toEqual([false, false, true]);
  });

  it('deleting a group is safe to repeat after a crash half-way, and leaves nothing behind', async () => {
    const groupToken = await groups.create(admin, 'edge', NO_CALLBACK);
    await secret('a.example.com');
    await groups.associate(admin, 'edge', 'a.example.com');
    await kv.write('groups/edge/nodes/n1', { registeredAt: 'x', seenAt: 'x' }, admin);
    const destroy = kv.destroy.bind(kv);
    let calls = 0;
    kv.destroy = async (path: string) => {
      if (++calls === 2) throw new Error('vault went away');
      return destroy(path);
    };
    await expect(groups.delete(admin, 'edge')).rejects.toThrow('vault went away');
    kv.destroy = destroy;
    await groups.delete(admin, 'edge');
    expect([...kv.entries.keys()].filter((k) => k.startsWith('groups/edge'))).toEqual([]);
    expect([...policies.policies.keys()]).toEqual([]);
    expect(await tokens.listRoles()).toEqual([]);
    expect(tokens.live(groupToken)).toBe(false);
    expect((await kv.read<{ groups: string[] }>('index/secret-groups/a.example.com'))?.data.groups).toEqual([]);
    await expect(groups.delete(admin, 'edge')).rejects.toBeInstanceOf(NotFound);
  });
});
