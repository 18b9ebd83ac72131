import { GroupTokenRenewer } from '../../src/groups/renewer';
import { createLogger } from '../../src/log';
import { VaultClient } from '../../src/vault/client';
import { Kv } from '../../src/vault/kv';
import { ServiceSession } from '../../src/vault/session';
import { Tokens } from '../../src/vault/tokens';
import { Harness, adminToken, env, harness } from '../support/harness';
import { createGroup, uniq, vaultAs } from '../support/rks';
import { freePort, vaultClient } from '../support/vault';

function renewerOn(vault: VaultClient, lines: string[], tokens = new Tokens(vault)): GroupTokenRenewer {
  const logger = createLogger('debug', { write: (l: string) => void lines.push(l) });
  const session = new ServiceSession(vault, { login: env.adminLogin, password: env.adminPassword }, logger);
  return new GroupTokenRenewer(new Kv(vault), tokens, session, logger);
}

describe('GroupTokenRenewer', () => {
  let h: Harness;
  beforeAll(() => {
    h = harness();
  });
  afterAll(() => h.close());

  it("renews every group token back to its full period by accessor, as rks's service identity", async () => {
    const admin = await adminToken(h.app);
    const g = uniq('renew');
    const groupToken = await createGroup(h.app, admin, g);
    const { accessor } = (await vaultAs(groupToken, 'GET', 'auth/token/lookup-self')).body.data;
    await new Promise((r) => setTimeout(r, 1100));
    // Other rks instances of the run renew group tokens too: what tells this renewer's work is its own call.
    const tokens = new Tokens(h.vault);
    const renewals = jest.spyOn(tokens, 'renewAccessor');
    const lines: string[] = [];
    const started = Date.now();
    const renewed = await renewerOn(h.vault, lines, tokens).renewAll();
    expect(renewed).toBeGreaterThanOrEqual(1);
    expect(renewals.mock.calls.map(([a]) => a)).toContain(accessor);
    const after = (await vaultAs(groupToken, 'GET', 'auth/token/lookup-self')).body.data;
    expect(after.ttl).toBeGreaterThanOrEqual(31 * 86400 - Math.ceil((Date.now() - started) / 1000) - 1);
    expect(after.last_renewal_time * 1000).toBeGreaterThanOrEqual(started - 1000);
    expect(lines.join('')).not.toContain(groupToken);
  });

  it("keeps no token alive but the group's own: an accessor an administrator put on record is not renewed", async () => {
    const admin = await adminToken(h.app);
    const g = uniq('plant');
    await createGroup(h.app, admin, g);
    // Another application's periodic token, its accessor written where the group's belongs (rks's data: the admin's to write).
    const other = (await vaultAs(env.rootToken, 'POST', 'auth/token/create', { policies: ['default'], period: '1h' })).body.auth;
    expect((await vaultAs(admin, 'POST', `rks/data/groups/${g}/grouptoken-accessor`, { data: { accessor: other.accessor } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 3000));
    const tokens = new Tokens(h.vault);
    const renewals = jest.spyOn(tokens, 'renewAccessor');
    const lines: string[] = [];
    await renewerOn(h.vault, lines, tokens).renewAll();
    expect(renewals.mock.calls.map(([a]) => a)).not.toContain(other.accessor);
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.group === g)).toMatchObject({ level: 'warn', msg: expect.stringContaining("not the group's token: not renewed") });
    expect((await vaultAs(other.client_token, 'GET', 'auth/token/lookup-self')).body.data.ttl).toBeLessThan(3598);
  });

  it('a Vault hiccup is logged and retried later, never thrown', async () => {
    const dead = vaultClient(`http://127.0.0.1:${await freePort()}`);
    const lines: string[] = [];
    await expect(renewerOn(dead, lines).renewAll()).resolves.toBe(0);
    expect(lines.map((l) => JSON.parse(l).msg)).toContain('group token renewal round failed; will retry');
    dead.close();
  });
});
