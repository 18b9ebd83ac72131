import { NotFound } from '../../src/errors';
import { Storage } from '../../src/secrets/storage';
import { GroupService } from '../../src/groups/service';
import { shardOf } from '../../src/secrets/catalog';
import { nodePolicy } from '../../src/vault/policies';
import { MemoryKv, MemoryPolicies, MemoryTokens, memorySession } from '../support/memory-vault';
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
    groups = new GroupService(new Storage(kv), policies, tokens, memorySession(tokens));
    admin = tokens.issue(['rks_admin']);
  });
  // Stored as a push stores it: the association rules look at the certificate's expiry only.
  const secret = (fqdn: string, notAfter = '2999-01-01T00:00:00.000Z') => kv.write(fqdn, { certificate: 'c', private_key: 'k', info: { notAfter } }, admin);

  it('creates a group: its config, its serial, its policies, its token and the accessor apart', async () => {
    const groupToken = await groups.create(admin, 'Edge', NO_CALLBACK);
    expect(tokens.live(groupToken)).toBe(true);
    expect((await kv.read('groups/edge/config'))?.data).toEqual(NO_CALLBACK);
    expect((await kv.read<{ incarnation: string }>('groups/edge/serial'))?.data.incarnation).toMatch(/^[0-9a-f-]{36}$/);
    expect(await kv.exists('groups/edge/secret-list')).toBe(false);
    expect(policies.policies.get('rks_node_edge')).toBe(nodePolicy('edge'));
    expect(policies.policies.get('rks_grouptoken_edge')).toContain('auth/token/create/rks_node_edge_*');
    const accessor = (await kv.read<{ accessor: string }>('groups/edge/grouptoken-accessor'))?.data.accessor;
    expect(accessor).toBe(tokens.tokens.get(groupToken)?.accessor);
    await expect(groups.create(admin, 'edge', NO_CALLBACK)).rejects.toMatchObject({ status: 409, code: 'already_exists' });
  });

  it("writes a group's policies as the writer (rks's identity), never with the caller's token; an identity that may not yet: 503 naming init, and no group left", async () => {
    const writers: string[] = [];
    const put = policies.putPolicy.bind(policies);
    (policies as { putPolicy: (name: string, text: string, token: string) => Promise<void> }).putPolicy = async (name, text, token) => {
      writers.push(tokens.tokens.get(token)?.policies.join() ?? 'unknown');
      return put(name, text);
    };
    await groups.create(admin, 'edge', NO_CALLBACK);
    expect(writers).toEqual(['rks_service', 'rks_service']);

    const { VaultError } = await import('../../src/vault/client');
    const stale = new GroupService(new Storage(kv), policies, tokens, { run: () => Promise.reject(new VaultError(403, ['permission denied'], 'sys.put-policy')) });
    await expect(stale.create(admin, 'other', NO_CALLBACK)).rejects.toMatchObject({ status: 503, message: expect.stringContaining('run init again') });
    expect(await kv.exists('groups/other/config')).toBe(false);
    // Deleting a group then: 503, and nothing of it gone.
    await expect(stale.delete(admin, 'edge')).rejects.toMatchObject({ status: 503 });
    expect(await kv.exists('groups/edge/config')).toBe(true);
    expect(policies.policies.has('rks_node_edge')).toBe(true);
    await groups.delete(admin, 'edge');
    expect([await kv.exists('groups/edge/config'), policies.policies.has('rks_node_edge'), policies.policies.has('rks_grouptoken_edge')]).toEqual([false, false, false]);
  });

  it("a group's copy ends at the secret's latest version, whichever write lands first", async () => {
    await groups.create(admin, 'edge', NO_CALLBACK);
    await secret('a.example.com');
    let raced = false;
    kv.beforeWrite = async (path) => {
      if (path === 'groups/edge/secrets/a.example.com' && !raced) {
        raced = true;
        // Another instance pushes a new certificate between our read of the secret and our copy.
        await kv.write('a.example.com', { certificate: 'c2', private_key: 'k2', info: { notAfter: '2999-01-01T00:00:00.000Z' } }, admin);
      }
    };
    await groups.associate(admin, 'edge', 'a.example.com');
    expect(raced).toBe(true);
    const copy = await kv.read<{ certificate: string; source: number }>('groups/edge/secrets/a.example.com');
    expect(copy?.data).toMatchObject({ certificate: 'c2', source: 2 });
    expect(await groups.secrets(admin, 'edge')).toEqual(['a.example.com']);
  });

  it('an association that a dissociation elsewhere overtook leaves no copy behind', async () => {
    await groups.create(admin, 'edge', NO_CALLBACK);
    await secret('a.example.com');
    kv.beforeWrite = async (path) => {
      // Another instance dissociates between our index entry and our copy.
      if (path === 'groups/edge/secrets/a.example.com') kv.entries.set('index/secret-groups/a.example.com', { data: { groups: [] }, version: 9 });
    };
    await expect(groups.associate(admin, 'edge', 'a.example.com')).rejects.toMatchObject({ code: 'concurrent_change' });
    expect(await kv.exists('groups/edge/secrets/a.example.com')).toBe(false);
    kv.beforeWrite = undefined;
    await groups.associate(admin, 'edge', 'a.example.com');
    expect(await groups.secrets(admin, 'edge')).toEqual(['a.example.com']);
  });

  it('an association that a dissociation elsewhere ended under (its last clean-up took the new copy) makes its copy again', async () => {
    await groups.create(admin, 'edge', NO_CALLBACK);
    await secret('a.example.com');
    const copy = 'groups/edge/secrets/a.example.com';
    const exists = kv.exists.bind(kv);
    const read = kv.read.bind(kv);
    let swept = false;
    kv.read = async <T>(path: string, token?: string, version?: number) => {
      // The dissociation's final sweep lands right after our copy, while the index names the group again.
      if (path === copy && (await exists(copy)) && !swept) {
        swept = true;
        await kv.destroy(copy);
      }
      return read<T>(path, token, version);
    };
    await groups.associate(admin, 'edge', 'a.example.com');
    expect(swept).toBe(true);
    expect(await exists(copy)).toBe(true);
    expect((await kv.read<{ groups: string[] }>('index/secret-groups/a.example.com'))?.data.groups).toEqual(['edge']);
  });

  it('an association that the group\'s deletion overtook (same instance) leaves neither copy nor index entry', async () => {
    await groups.create(admin, 'edge', NO_CALLBACK);
    await secret('a.example.com');
    let deleting: Promise<void> | undefined;
    kv.beforeWrite = async (path) => {
      // The group is deleted between our index entry and our copy: its listing of copies misses ours.
      if (path === 'groups/edge/secrets/a.example.com' && !deleting) {
        deleting = groups.delete(admin, 'edge');
        await deleting;
      }
    };
    await expect(groups.associate(admin, 'edge', 'a.example.com')).rejects.toMatchObject({ status: 404 });
    await deleting;
    expect(await kv.exists('groups/edge/secrets/a.example.com')).toBe(false);
    expect((await kv.read<{ groups: string[] }>('index/secret-groups/a.example.com'))?.data.groups).toEqual([]);
    expect((await kv.read<any>(`index/catalog/${shardOf('a.example.com')}`))?.data.secrets['a.example.com'].groups).toEqual([]);
  });

  it('every change of the associations names the list anew; a retry after a failure half-way does too', async () => {
    await groups.create(admin, 'edge', NO_CALLBACK);
    await secret('a.example.com');
    const version = async () => (await kv.read('groups/edge/serial'))!.version;
    const v0 = await version();
    await groups.associate(admin, 'edge', 'a.example.com');
    expect(await version()).toBe(v0 + 1);
    await expect(groups.associate(admin, 'edge', 'a.example.com')).rejects.toMatchObject({ code: 'already_associated' });
    expect(await version()).toBe(v0 + 2);
    // A dissociation that stopped after removing the copy is finished by the retry.
    await kv.destroy('groups/edge/secrets/a.example.com');
    await groups.dissociate(admin, 'edge', 'a.example.com');
    expect(await version()).toBe(v0 + 3);
    expect((await kv.read<{ groups: string[] }>('index/secret-groups/a.example.com'))?.data.groups).toEqual([]);
  });

  it('moves a group of the layout before copies without losing an entry, and refuses to change it until then', async () => {
    await secret('a.example.com');
    await secret('b.example.com');
    await kv.write('groups/old/config', NO_CALLBACK, admin);
    await kv.write('groups/old/secret-list', { secrets: ['a.example.com', 'b.example.com', 'gone.example.com'] }, admin);
    await policies.putPolicy('rks_node_old', 'path "rks/data/a.example.com" {}');
    await expect(groups.associate(admin, 'old', 'a.example.com')).rejects.toMatchObject({ status: 409, code: 'layout_outdated' });
    expect(await groups.secrets(admin, 'old')).toEqual(['a.example.com', 'b.example.com', 'gone.example.com']);
    expect(await groups.upgrade(admin, 'old')).toEqual(['gone.example.com']);
    expect(await groups.secrets(admin, 'old')).toEqual(['a.example.com', 'b.example.com']);
    expect(await kv.exists('groups/old/secret-list')).toBe(false);
    expect(policies.policies.get('rks_node_old')).toBe(nodePolicy('old'));
    expect((await kv.read<{ groups: string[] }>('index/secret-groups/b.example.com'))?.data.groups).toEqual(['old']);
    await groups.dissociate(admin, 'old', 'a.example.com');
    expect(await groups.secrets(admin, 'old')).toEqual(['b.example.com']);
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

  it('a revocation overtaken by the group\'s deletion on another instance leaves no record for a group made again with the name', async () => {
    await groups.create(admin, 'edge', NO_CALLBACK);
    const other = new GroupService(new Storage(kv), policies, tokens, memorySession(tokens)); // another rks instance: its own locks
    const write = kv.write.bind(kv);
    jest.spyOn(kv, 'write').mockImplementation(async (path: string, data: unknown, token: string, cas?: number) => {
      const version = await write(path, data, token, cas);
      if (path === 'groups/edge/revoked/node-1') await other.delete(admin, 'edge');
      return version;
    });
    await groups.revokeNode(admin, 'edge', 'node-1');
    expect(await kv.exists('groups/edge/revoked/node-1')).toBe(false);
  });
});
