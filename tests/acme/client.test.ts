import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { acme, acmeClient } from '../../src/acme/client';
import { issue } from '../support/pki';

describe('acmeClient', () => {
  it('shares one connection pool among the clients of a CA: orders one after another reuse a connection, not one left open each', async () => {
    const ca = await issue({ name: 'test ACME CA', ca: true });
    const leaf = await issue({ name: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], issuer: ca });
    let connections = 0;
    const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      res.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order`, meta: { termsOfService: `${base}/terms` } }));
    });
    server.on('secureConnection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const directory = `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir`;
      const accountKey = (await acme.crypto.createPrivateEcdsaKey()).toString();
      for (let i = 0; i < 20; i++) {
        const { client } = acmeClient({ directory, caBundle: ca.certPem }, { accountKey, timeoutMs: 5000 });
        expect(await client.getTermsOfServiceUrl()).toMatch(/\/terms$/);
      }
      expect(connections).toBe(1);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
