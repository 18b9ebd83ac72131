import { GroupTokenRenewer } from '../../src/groups/renewer';
import { createLogger } from '../../src/log';
import { VaultClient } from '../../src/vault/client';
import { Kv } from '../../src/vault/kv';
import { ServiceSession } from '../../src/vault/session';
import { Tokens } from '../../src/vault/tokens';
import { Harness, adminToken, env, harness } from '../support/harness';
import { createGroup, uniq, vaultAs } from '../support/rks';
import { freePort } from '../support/vault';

function renewerOn(vault: VaultClient, lines: string[]): GroupTokenRenewer {
  const logger = createLogger('debug', { write: (l: string) => void lines.push(l) });
  const session = new ServiceSession(vault, { login: env.adminLogin, password: env.adminPassword }, logger);
  return new GroupTokenRenewer(new Kv(vault), new Tokens(vault), session, logger);
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
    await new Promise((r) => setTimeout(r, 2100));
    const before = (await vaultAs(groupToken, 'GET', 'auth/token/lookup-self')).body.data.ttl;
    expect(before).toBeLessThanOrEqual(31 * 86400 - 2);
    const lines: string[] = [];
    const renewed = await renewerOn(h.vault, lines).renewAll();
    expect(renewed).toBeGreaterThanOrEqual(1);
    const after = (await vaultAs(groupToken, 'GET', 'auth/token/lookup-self')).body.data.ttl;
    expect(after).toBeGreaterThan(before);
    expect(lines.join('')).not.toContain(groupToken);
  });

  it('a Vault hiccup is logged and retried later, never thrown', async () => {
    const dead = new VaultClient({ addr: `http://127.0.0.1:${await freePort()}` });
    const lines: string[] = [];
    await expect(renewerOn(dead, lines).renewAll()).resolves.toBe(0);
    expect(lines.map((l) => JSON.parse(l).msg)).toContain('group token renewal round failed; will retry');
    dead.close();
  });
});
