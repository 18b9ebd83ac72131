import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InitService } from '../../src/init/service';
import { vaultStores } from '../../src/vault/adapters';
import { LAYOUT } from '../../src/vault/layout';
import { httpsRequest, runRks } from '../support/serve';
import { TestVault, freePort, startVault, vaultCaller, vaultClient } from '../support/vault';
import { issue } from '../support/pki';

/**
 * A rolling upgrade: two rks instances on one Vault, then a newer rks runs init (here: the
 * layout it writes, one above this rks's). Both instances left behind must stop writing (503
 * layout_newer), stop being ready, and go on reading; nothing they are asked to write reaches
 * Vault. On its own Vault: the layout is the run's shared state.
 */
describe('instances left behind by a rolling upgrade', () => {
  let vault: TestVault;
  const admin = { login: 'ops', password: randomBytes(18).toString('base64url') };
  const instances: ReturnType<typeof runRks>[] = [];
  const urls: string[] = [];
  let ca: string;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-layout-'));

  const call = (url: string, method: string, p: string, token?: string, body?: unknown) =>
    httpsRequest(`${url}${p}`, { method, ca, headers: { ...(token ? { 'X-Vault-Token': token } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });

  beforeAll(async () => {
    vault = await startVault();
    await new InitService(vaultStores(vaultClient(vault.addr)), admin).init(vault.rootToken);
    ca = (await vaultCaller(vault)('GET', 'rks-pki/cert/ca')).body.data.certificate;
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const rks = runRks(['serve', '--listen', `127.0.0.1:${port}`], { RKS_VAULT_ADDR: vault.addr, RKS_ADMIN_LOGIN: admin.login, RKS_ADMIN_PASSWORD: admin.password });
      instances.push(rks);
      urls.push(`https://127.0.0.1:${port}`);
    }
    // Listening, not only holding its certificate: the first request comes at once.
    for (const rks of instances) await rks.waitFor('rks listening', 20_000);
  }, 60_000);
  afterAll(async () => {
    for (const rks of instances) await rks.stop();
    await vault?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stop writing and say why, stay out of the load balancer, go on reading; and write again once the layout is theirs', async () => {
    const token = JSON.parse((await call(urls[0]!, 'POST', '/rks/v1/admin/login', undefined, admin)).body).adminToken as string;
    const secret = async (name: string) => {
      const leaf = await issue({ name, dns: [name] });
      return { data: { certificate: leaf.certPem, private_key: leaf.keyPem } };
    };
    expect((await call(urls[1]!, 'POST', '/rks/v1/secret/before.layout.example.com', token, await secret('before.layout.example.com'))).status).toBe(201);

    // An administrator's token cannot move the layout (that would stop every instance): root's alone.
    const vaultCall = vaultCaller(vault);
    expect((await vaultCall('POST', 'rks/data/config', { data: { layout: LAYOUT + 5 } }, token)).status).toBe(403);
    expect((await vaultCall('DELETE', 'rks/metadata/config', undefined, token)).status).toBe(403);
    // The newer rks's init: the layout it writes.
    const config = (await vaultCall('GET', 'rks/data/config')).body.data.data;
    await vaultCall('POST', 'rks/data/config', { data: { ...config, layout: LAYOUT + 1 } });

    for (const [i, url] of urls.entries()) {
      // Within the watch's interval (10 s) and a check.
      let ready: { status: number; body: string } | undefined;
      for (const started = Date.now(); Date.now() - started < 15_000; ) {
        ready = await call(url, 'GET', '/readyz');
        if (ready.status === 503) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(ready!.status).toBe(503);
      expect(ready!.body).toContain(`Vault holds rks layout ${LAYOUT + 1}, newer than this rks's (${LAYOUT})`);
      await instances[i]!.waitFor('a newer rks ran init', 5000);

      const name = `after-${i}.layout.example.com`;
      const refused = await call(url, 'POST', `/rks/v1/secret/${name}`, token, await secret(name));
      expect(refused.status).toBe(503);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'layout_newer', errors: [expect.stringContaining('a newer rks ran init')] });
      expect((await vaultCall('GET', `rks/data/${name}`)).status).toBe(404);
      expect((await call(url, 'POST', '/rks/v1/group/late', token, { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' })).status).toBe(503);
      expect((await vaultCall('GET', 'sys/policies/acl/rks_node_late')).status).toBe(404);
      // Reads go on.
      expect((await call(url, 'GET', '/rks/v1/secret/before.layout.example.com', token)).status).toBe(200);
    }
    // Its init would write its older layout and policies over the newer ones: refused.
    const init = await call(urls[0]!, 'POST', '/rks/v1/init', vault.rootToken);
    expect(init.status).toBe(503);
    expect((await vaultCall('GET', 'rks/data/config')).body.data.data.layout).toBe(LAYOUT + 1);

    // Put back (the upgrade rolled back): they write again.
    await vaultCall('POST', 'rks/data/config', { data: { ...config, layout: LAYOUT } });
    await instances[0]!.waitFor('writing again', 15_000);
    expect((await call(urls[0]!, 'POST', '/rks/v1/secret/again.layout.example.com', token, await secret('again.layout.example.com'))).status).toBe(201);
  }, 90_000);
});
