import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { adminToken, env, harness, vaultWrite } from '../support/harness';
import { chainFor } from '../support/pki';

/** A TCP relay in front of Vault that counts the connections rks opens. */
async function countingProxy(target: URL): Promise<{ url: string; connections: () => number; close: () => void }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * The hot path (design §9): GET /rks/v1/secret/{fqdn} costs exactly one Vault request,
 * over a pooled keep-alive connection. Vault's own file audit device counts the requests
 * (filtered by a token only this test uses); a TCP relay counts the connections.
 */
describe('hot path: one Vault round trip per secret read', () => {
  const auditFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rks-audit-')), 'audit.log');
  const device = `rks-hotpath-${process.pid}`;

  afterAll(async () => {
    await fetch(`${env.vaultAddr}/v1/sys/audit/${device}`, { method: 'DELETE', headers: { 'X-Vault-Token': env.rootToken } });
    fs.rmSync(path.dirname(auditFile), { recursive: true, force: true });
  });

  it('20 reads make 20 Vault requests over one connection', async () => {
    const proxy = await countingProxy(new URL(env.vaultAddr));
    const h = harness({ vaultAddrs: [proxy.url] });
    try {
      const admin = await adminToken(h.app);
      const fqdn = `hot-${Date.now()}.example.com`;
      const c = await chainFor([fqdn]);
      await request(h.app)
        .post(`/rks/v1/secret/${fqdn}`)
        .set('X-Vault-Token', admin)
        .send({ data: { certificate: c.certificate, private_key: c.privateKey } })
        .expect(201);

      // A token nothing else uses, so its audit entries are this test's alone.
      const reader = (await vaultWrite('auth/token/create', { policies: ['rks_admin'], ttl: '10m' })).body.auth.client_token;
      const enabled = await vaultWrite(`sys/audit/${device}`, { type: 'file', options: { file_path: auditFile, log_raw: 'true' } }, 'PUT');
      expect(enabled.status).toBe(204);
      const connectionsBefore = proxy.connections();

      for (let i = 0; i < 20; i++) {
        const res = await request(h.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', reader);
        expect(res.status).toBe(200);
        expect(res.body.data.private_key).toBe(c.privateKey);
      }

      const entries = fs
        .readFileSync(auditFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((e) => e.type === 'request' && e.auth?.client_token === reader);
      expect(entries).toHaveLength(20);
      expect(new Set(entries.map((e) => `${e.request.operation} ${e.request.path}`))).toEqual(new Set([`read rks/data/${fqdn}`]));
      // The pool was already warm from the admin calls: no new connection at all.
      expect(proxy.connections() - connectionsBefore).toBe(0);
      expect(proxy.connections()).toBe(1);
    } finally {
      h.close();
      proxy.close();
    }
  });
});
