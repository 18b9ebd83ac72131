import { X509Certificate } from 'node:crypto';
import { createLogger } from '../../src/log';
import { PkiService } from '../../src/pki/service';
import { ManagedCertificate } from '../../src/server/certificate';
import { TlsFiles } from '../../src/server/server';
import { Pki } from '../../src/vault/pki';
import { ServiceSession } from '../../src/vault/session';
import { env } from '../support/harness';
import { freePort, vaultClient } from '../support/vault';

function managed(addr: string, lines: string[], apply?: (t: TlsFiles) => void, lifetime = 3600, before = 60) {
  const vault = vaultClient(addr);
  const logger = createLogger('debug', { write: (l: string) => void lines.push(l) });
  const session = new ServiceSession(vault, { login: env.adminLogin, password: env.adminPassword }, logger);
  const pki = new PkiService(new Pki(vault), session);
  const cert = new ManagedCertificate(
    pki,
    { commonName: 'rks.test', dnsNames: ['rks.test', 'localhost'], ipAddresses: ['127.0.0.1'], lifetimeSeconds: lifetime, renewBeforeSeconds: before, retrySeconds: 1 },
    logger,
  );
  if (apply) cert.onIssued(apply);
  return { cert, pki, vault };
}

describe('ManagedCertificate', () => {
  it('issues rks\'s certificate from the CA in Vault, chained to /ca/cert, with its names', async () => {
    const lines: string[] = [];
    const { cert, pki, vault } = managed(env.vaultAddr, lines);
    try {
      const tls = await cert.start();
      expect(cert.current?.selfSigned).toBe(false);
      const [leafPem] = String(tls.cert).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
      const leaf = new X509Certificate(leafPem);
      const ca = new X509Certificate((await pki.caCertificate()).pem);
      expect(leaf.verify(ca.publicKey)).toBe(true);
      expect(leaf.subject).toBe('CN=rks.test');
      expect(leaf.subjectAltName).toContain('DNS:localhost');
      expect(leaf.subjectAltName).toContain('IP Address:127.0.0.1');
      expect(leaf.checkPrivateKey(require('node:crypto').createPrivateKey(tls.key))).toBe(true);
      expect(lines.join('')).toContain('serving with a certificate from the rks CA');
      expect(lines.join('')).not.toContain('PRIVATE KEY');
    } finally {
      cert.stop();
      vault.close();
    }
  });

  it('falls back to an ephemeral certificate while Vault has no CA for it, and says so', async () => {
    const lines: string[] = [];
    const { cert, vault } = managed(`http://127.0.0.1:${await freePort()}`, lines);
    try {
      const tls = await cert.start();
      expect(cert.current?.selfSigned).toBe(true);
      expect(new X509Certificate(tls.cert).subject).toContain('O=rks ephemeral');
      expect(lines.join('')).toContain('ephemeral self-signed certificate');
    } finally {
      cert.stop();
      vault.close();
    }
  });

  it('a lifetime beyond what one timer can span does not renew early', async () => {
    const applied: string[] = [];
    const { cert, vault } = managed(env.vaultAddr, [], (t) => applied.push(String(t.cert)), 40 * 86400, 86400);
    try {
      await cert.start();
      await new Promise((r) => setTimeout(r, 500));
      expect(applied).toHaveLength(1);
    } finally {
      cert.stop();
      vault.close();
    }
  });

  it('renews before expiry and hands each new certificate over', async () => {
    const applied: string[] = [];
    const { cert, vault } = managed(env.vaultAddr, [], (t) => applied.push(String(t.cert)), 4, 3);
    try {
      await cert.start();
      await new Promise((r) => setTimeout(r, 2500));
      expect(applied.length).toBeGreaterThanOrEqual(2);
      expect(new Set(applied).size).toBe(applied.length);
    } finally {
      cert.stop();
      vault.close();
    }
  });
});
