import http from 'node:http';
import request from 'supertest';
import { RksNode } from '../../src/sdk';
import { startDns } from '../support/dns';
import { ServedRks, adminToken, env, serveRks, vaultWrite } from '../support/harness';
import { createGroup, uniq } from '../support/rks';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The same ACME flow against Vault's own PKI ACME server (a second PKI mount of the run's Vault).
 * Vault validates HTTP-01 on port 80 of what the name resolves to (through the test's DNS
 * responder: 127.0.0.1), so this needs the privilege to listen on port 80.
 */
const privileged = process.getuid?.() === 0;
// Vault validates HTTP-01 on port 80 only. A run that cannot listen there says so where it is seen.
if (!privileged) process.stderr.write('\n*** SKIPPED: tests/acme/vault-acme.vault.test.ts (Vault\'s ACME server validates on port 80: run the tests as root) ***\n\n');
(privileged ? describe : describe.skip)('managed secrets from Vault\'s PKI ACME server (needs port 80: root)', () => {
  const mount = uniq('pki-acme');
  let dns: Awaited<ReturnType<typeof startDns>>;
  let port80: http.Server;
  let rks: ServedRks;
  let node: RksNode;
  let admin: string;

  beforeAll(async () => {
    dns = await startDns();
    const must = async (path: string, body: unknown) => {
      const r = await vaultWrite(path, body);
      if (r.status >= 300) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
    };
    await must(`sys/mounts/${mount}`, { type: 'pki', config: { max_lease_ttl: '8760h' } });
    await must(`sys/mounts/${mount}/tune`, {
      allowed_response_headers: ['Last-Modified', 'Location', 'Replay-Nonce', 'Link'],
      passthrough_request_headers: ['If-Modified-Since'],
    });
    await must(`${mount}/root/generate/internal`, { common_name: 'Vault ACME test root', ttl: '8760h' });
    await must(`${mount}/config/cluster`, { path: `${env.vaultAddr}/v1/${mount}`, aia_path: `${env.vaultAddr}/v1/${mount}` });
    await must(`${mount}/config/acme`, { enabled: true, dns_resolver: dns.addr, default_directory_policy: 'sign-verbatim' });

    rks = await serveRks({ managedCheckInterval: 1 });
    admin = await adminToken(rks.app);
    port80 = http.createServer((req, res) => node.httpHandler(req, res));
    await new Promise<void>((resolve, reject) => port80.once('error', reject).listen(80, '127.0.0.1', resolve));
  }, 60_000);
  afterAll(async () => {
    node?.stop();
    port80?.close();
    dns?.close();
    await rks?.stop();
    await vaultWrite(`sys/mounts/${mount}`, undefined, 'DELETE');
  });

  it('issues through an order whose HTTP-01 challenge the edge answers by asking rks', async () => {
    const g = uniq('vacme');
    const groupToken = await createGroup(rks.app, admin, g);
    node = new RksNode({ url: rks.url, groupToken, nodeId: 'edge-v', ca: rks.ca });
    await node.start();
    await request(rks.app).post('/rks/v1/acme/issuers/vault').set('X-Vault-Token', admin)
      .send({ directory: `${env.vaultAddr}/v1/${mount}/acme/directory`, termsOfServiceAgreed: true }).expect(201);
    const name = `${uniq('v')}.example.com`;
    await request(rks.app).post(`/rks/v1/secret/${name}/managed`).set('X-Vault-Token', admin).send({ issuer: 'vault', keyType: 'rsa-3072' }).expect(202);
    let info: any;
    for (const deadline = Date.now() + 40_000; Date.now() < deadline; await sleep(300)) {
      info = (await request(rks.app).get(`/rks/v1/secret/${name}/info`).set('X-Vault-Token', admin)).body;
      if (!info.pending) break;
    }
    expect(info.renewal.lastError).toBeUndefined();
    expect(info).toMatchObject({ issuer: 'CN=Vault ACME test root', keyType: 'RSA 3072', sans: [`DNS:${name}`], renewal: { issuer: 'vault', failures: 0 } });
    expect(dns.queries.some((q) => q.startsWith(name))).toBe(true);
  }, 60_000);
});
