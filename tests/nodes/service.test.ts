import { Counter, Registry } from 'prom-client';
import { Storage } from '../../src/secrets/storage';
import { BadGateway, Forbidden } from '../../src/errors';
import { GroupService } from '../../src/groups/service';
import { NodeService } from '../../src/nodes/service';
import { VaultError } from '../../src/vault/client';
import { NO_CALLBACK } from '../support/constants';
import { MemoryKv, MemoryPolicies, MemoryTokens, memorySession } from '../support/memory-vault';

/** Node admission against an in-memory Vault. */
describe('NodeService (in memory)', () => {
  let kv: MemoryKv;
  let tokens: MemoryTokens;
  let groupToken: string;
  let refusals: Counter;
  const callbacks: string[] = [];
  let verdict: 'admit' | 'refuse' | 'fail' = 'admit';
  const verifier = {
    async verify(_info: unknown, nodeId: string) {
      callbacks.push(nodeId);
      if (verdict === 'refuse') throw new Forbidden(`node '${nodeId}' was refused by the group's callback (403)`, 'callback_refused');
      if (verdict === 'fail') throw new BadGateway('callback answered 500');
    },
  };
  const nodes = (max = 3) => new NodeService(new Storage(kv), tokens, memorySession(tokens), verifier, { tokenPeriod: 600, maxNodesPerGroup: max }, refusals);

  beforeEach(async () => {
    kv = new MemoryKv();
    tokens = new MemoryTokens();
    refusals = new Counter({ name: 'refusals', help: 'x', registers: [new Registry()] });
    verdict = 'admit';
    callbacks.length = 0;
    groupToken = await new GroupService(new Storage(kv), new MemoryPolicies(), tokens, memorySession(tokens)).create(tokens.issue(['rks_admin']), 'edge', NO_CALLBACK);
  });

  it('admits a node: a record, a role held to the node policy, a token that is a child of the group token', async () => {
    const { nodeToken, ttl } = await nodes().register(groupToken, 'Node-1');
    expect(ttl).toBe(600);
    expect(tokens.tokens.get(nodeToken)).toMatchObject({ policies: ['rks_node_edge'], parent: groupToken, meta: { groupname: 'edge', nodeid: 'node-1' } });
    expect(tokens.roles.get('rks_node_edge_node-1')).toMatchObject({ allowed_policies: ['rks_node_edge'], orphan: false });
    expect((await kv.read('groups/edge/nodes/node-1'))?.data).toEqual({ registeredAt: expect.any(String), seenAt: expect.any(String) });
  });

  it('keeps one live token a node: registering again revokes the previous one', async () => {
    const service = nodes();
    const first = (await service.register(groupToken, 'n1')).nodeToken;
    const second = (await service.register(groupToken, 'n1')).nodeToken;
    expect([tokens.live(first), tokens.live(second)]).toEqual([false, true]);
  });

  it('refuses a new node beyond the group limit (409 node_limit_reached, counted), known nodes go on', async () => {
    const service = nodes(2);
    await service.register(groupToken, 'n1');
    await service.register(groupToken, 'n2');
    await expect(service.register(groupToken, 'n3')).rejects.toMatchObject({ status: 409, code: 'node_limit_reached' });
    expect(tokens.roles.has('rks_node_edge_n3')).toBe(false);
    expect((await refusals.get()).values[0].value).toBe(1);
    await expect(service.register(groupToken, 'n2')).resolves.toMatchObject({ ttl: 600 });
  });

  it('fails closed on a group config rks cannot use: a record in another server\'s shape or an http callback is never skipped', async () => {
    for (const record of [
      { CallbackURL: 'https://manager.example/cb', OauthURL: 'https://manager.example/token', OauthClientID: 'id', OauthClientSecret: 's' },
      { callbackURL: 'http://manager.example/cb', oauthURL: 'https://manager.example/token', oauthClientID: 'id', oauthClientSecret: 's' },
    ]) {
      await kv.write('groups/edge/config', record, 'root');
      await expect(nodes().register(groupToken, 'n1')).rejects.toMatchObject({ status: 502, code: 'upstream_failed' });
    }
    expect(callbacks).toEqual([]);
    expect(tokens.roles.has('rks_node_edge_n1')).toBe(false);
  });

  it('a token that is not a group token registers nothing', async () => {
    const admin = tokens.issue(['rks_admin']);
    await expect(nodes().register(admin, 'n1')).rejects.toMatchObject({ status: 403 });
    await expect(nodes().register('hvs.unknown', 'n1')).rejects.toMatchObject({ status: 403 });
    expect(tokens.roles.has('rks_node_edge_n1')).toBe(false);
  });

  it("a group's callback decides: refused or failing, nothing is created", async () => {
    await kv.write('groups/edge/config', { callbackURL: 'https://manager.example/cb', oauthURL: 'https://manager.example/token', oauthClientID: 'id', oauthClientSecret: 's' }, 'x');
    verdict = 'refuse';
    await expect(nodes().register(groupToken, 'n1')).rejects.toMatchObject({ status: 403, code: 'callback_refused' });
    verdict = 'fail';
    await expect(nodes().register(groupToken, 'n1')).rejects.toMatchObject({ status: 502 });
    expect(callbacks).toEqual(['n1', 'n1']);
    expect(await kv.exists('groups/edge/nodes/n1')).toBe(false);
    expect(tokens.roles.has('rks_node_edge_n1')).toBe(false);
  });

  it('a renewal through rks refreshes the node record', async () => {
    const service = nodes();
    const { nodeToken } = await service.register(groupToken, 'n1');
    await kv.write('groups/edge/nodes/n1', { registeredAt: 'old', seenAt: '2020-01-01T00:00:00.000Z' }, 'x');
    await service.renewSelf(nodeToken);
    await new Promise((r) => setImmediate(r));
    const record = await kv.read<{ seenAt: string }>('groups/edge/nodes/n1');
    expect(Date.parse(record!.data.seenAt)).toBeGreaterThan(Date.now() - 60_000);
  });

  describe('a revocation racing a registration', () => {
    /** The node tokens registrations make, handed out or not. */
    const tokensMade = () => {
      const made: string[] = [];
      const create = tokens.createFromRole.bind(tokens);
      jest.spyOn(tokens, 'createFromRole').mockImplementation(async (...args) => {
        const issued = await create(...args);
        made.push(issued.token);
        return issued;
      });
      return made;
    };
    const callbackGroup = { callbackURL: 'https://manager.example/cb', oauthURL: 'https://manager.example/token', oauthClientID: 'id', oauthClientSecret: 'secret' };

    it('a registration whose callback is still running when the node is revoked ends refused, its token revoked and its role gone', async () => {
      const admin = tokens.issue(['rks_admin']);
      const groups = new GroupService(new Storage(kv), new MemoryPolicies(), tokens, memorySession(tokens));
      await kv.write('groups/edge/config', callbackGroup, admin);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const made = tokensMade();
      const slow = new NodeService(new Storage(kv), tokens, memorySession(tokens), { verify: () => gate }, { tokenPeriod: 600, maxNodesPerGroup: 10 });
      const inFlight = slow.register(groupToken, 'node-1');
      await new Promise((r) => setTimeout(r, 10));
      await groups.revokeNode(admin, 'edge', 'node-1');
      release();
      await expect(inFlight).rejects.toMatchObject({ status: 403, code: 'node_revoked' });
      expect(made).toHaveLength(1);
      expect(tokens.live(made[0]!)).toBe(false);
      expect(tokens.roles.has('rks_node_edge_node-1')).toBe(false);
      expect(await kv.exists('groups/edge/nodes/node-1')).toBe(false);
    });

    it('a revocation landing between the registration\'s check and its token: the token does not survive either', async () => {
      const admin = tokens.issue(['rks_admin']);
      const groups = new GroupService(new Storage(kv), new MemoryPolicies(), tokens, memorySession(tokens));
      const read = kv.read.bind(kv);
      let fired = false;
      jest.spyOn(kv, 'read').mockImplementation(async (path: string, token?: string, version?: number) => {
        const answer = await read(path, token, version);
        if (path === 'groups/edge/revoked/node-1' && !fired) {
          fired = true;
          await groups.revokeNode(admin, 'edge', 'node-1');
        }
        return answer as never;
      });
      const made = tokensMade();
      await expect(nodes().register(groupToken, 'node-1')).rejects.toMatchObject({ code: 'node_revoked' });
      expect(made.map((t) => tokens.live(t))).toEqual([false]);
    });

    it('Vault failing at the second look: the token made is neither handed out nor kept', async () => {
      const read = kv.read.bind(kv);
      let looks = 0;
      jest.spyOn(kv, 'read').mockImplementation(async (path: string, token?: string, version?: number) => {
        if (path === 'groups/edge/revoked/node-1' && ++looks === 2) throw new VaultError(503, ['Vault is sealed'], 'kv.read');
        return read(path, token, version) as never;
      });
      const made = tokensMade();
      await expect(nodes().register(groupToken, 'node-1')).rejects.toMatchObject({ status: 503 });
      expect(made.map((t) => tokens.live(t))).toEqual([false]);
      expect(tokens.roles.has('rks_node_edge_node-1')).toBe(false);
    });

    it('the role removed between admission and token (a revocation elsewhere): node_revoked, not a 500', async () => {
      const admin = tokens.issue(['rks_admin']);
      const groups = new GroupService(new Storage(kv), new MemoryPolicies(), tokens, memorySession(tokens));
      const create = tokens.createFromRole.bind(tokens);
      jest.spyOn(tokens, 'createFromRole').mockImplementationOnce(async (...args) => {
        await groups.revokeNode(admin, 'edge', 'node-1');
        return create(...args);
      });
      await expect(nodes().register(groupToken, 'node-1')).rejects.toMatchObject({ status: 403, code: 'node_revoked' });
    });

    it('an rks identity that cannot read revocations refuses registrations (503, run init) instead of letting revoked nodes in', async () => {
      const read = kv.read.bind(kv);
      jest.spyOn(kv, 'read').mockImplementation(async (path: string, token?: string, version?: number) => {
        if (path.startsWith('groups/edge/revoked/')) throw new VaultError(403, ['permission denied'], 'kv.read');
        return read(path, token, version) as never;
      });
      await expect(nodes().register(groupToken, 'node-1')).rejects.toMatchObject({ status: 503, message: expect.stringMatching(/run init again/) });
      expect(tokens.roles.has('rks_node_edge_node-1')).toBe(false);
    });
  });
});
