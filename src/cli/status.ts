import { Command } from 'commander';
import { RksHttp } from './http';
import { Conn, connected } from './connection';
import { out } from './output';

/** `rks status`: is rks up and ready, on which Vault, with which CA and version. */
export function statusCommand(): Command {
  return connected(new Command('status').description('Server, Vault and readiness, the CA fingerprint and the version (no token needed; with an admin token, the Vault nodes too)')).action(async (o: Conn) => {
    const http = new RksHttp({ url: o.url, caCert: o.caCert });
    const live = await http.request('GET', '/healthz');
    const ready = await http.raw('GET', '/readyz', o.token ? { headers: { 'X-Vault-Token': o.token } } : undefined);
    const r = JSON.parse(ready.data) as { status: string; reasons: string[]; version?: string; vault?: { active?: string; nodes: { addr: string; state: string }[] } };
    const ca = await http.raw('GET', '/ca/cert');
    const fingerprint = ca.status === 200 ? new (require('node:crypto') as typeof import('node:crypto')).X509Certificate(ca.data).fingerprint256 : undefined;
    const status = { url: o.url, live: live.status === 200, ready: r.status === 'ready', reasons: r.reasons, version: r.version, vault: r.vault, caFingerprint: fingerprint };
    out(
      o,
      status,
      [
        `rks       ${o.url}  ${r.version ? `version ${r.version}` : ''}`,
        `ready     ${status.ready ? 'yes' : `no: ${r.reasons.join('; ')}`}`,
        r.vault
          ? `vault     ${r.vault.nodes.map((n) => `${n.addr} ${n.state}`).join(', ') || '-'}${r.vault.active ? `  (active: ${r.vault.active})` : ''}`
          : 'vault     nodes shown with an admin token (--token, RKS_TOKEN)',
        `CA        ${fingerprint ?? 'not served yet (rks is not initialised)'}`,
      ].join('\n'),
    );
    if (!status.ready) process.exitCode = 1;
  });
}
