import request from 'supertest';
import { createLogger } from '../../src/log';
import { createMetrics } from '../../src/metrics';
import { NodePruner } from '../../src/nodes/pruner';
import { NodeRecords } from '../../src/records/nodes';
import { Kv } from '../../src/vault/kv';
import { ServiceSession } from '../../src/vault/session';
import { Tokens } from '../../src/vault/tokens';
import { Harness, adminToken, env, harness, vaultRead, vaultWrite } from '../support/harness';
import { createGroup, registerNode, uniq, vaultAs } from '../support/rks';

describe('NodePruner', () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = harness();
    admin = await adminToken(h.app);
  });
  afterAll(() => h.close());

  it('forgets nodes idle for longer than the expiry (token, role, record) and keeps the others', async () => {
    const g = uniq('prune');
    const groupToken = await createGroup(h.app, admin, g);
    const idle = await registerNode(h.app, groupToken, 'idle');
    const active = await registerNode(h.app, groupToken, 'active');
    const longAgo = new Date(Date.now() - 2 * 86400_000).toISOString();
    await vaultWrite(`rks/data/groups/${g}/nodes/idle`, { data: { registeredAt: longAgo, seenAt: longAgo } });

    const metrics = createMetrics(undefined, false);
    const logger = createLogger('silent');
    const session = new ServiceSession(h.vault, { login: env.adminLogin, password: env.adminPassword }, logger);
    const pruner = new NodePruner(new Kv(h.vault), new NodeRecords(new Kv(h.vault)), new Tokens(h.vault), session, 86400_000, logger, metrics.nodesPruned);
    expect(await pruner.pruneAll()).toBeGreaterThanOrEqual(1);

    expect((await vaultRead(`rks/data/groups/${g}/nodes/idle`)).status).toBe(404);
    expect((await vaultRead(`auth/token/roles/rks_node_${g}_idle`)).status).toBe(404);
    expect((await vaultAs(idle.nodeToken, 'GET', 'auth/token/lookup-self')).status).toBe(403);
    expect((await vaultRead(`rks/data/groups/${g}/nodes/active`)).status).toBe(200);
    expect((await vaultAs(active.nodeToken, 'GET', 'auth/token/lookup-self')).status).toBe(200);
    expect(await metrics.registry.getSingleMetricAsString('rks_nodes_pruned_total')).toMatch(/rks_nodes_pruned_total [1-9]/);

    // A forgotten node that comes back simply registers again.
    const res = await request(h.app).post('/rks/v1/node').set('X-Vault-Token', groupToken).set('X-LCDN-nodeId', 'idle');
    expect(res.status).toBe(201);
  });
});
