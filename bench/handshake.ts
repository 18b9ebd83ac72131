/**
 * TLS handshake latency at an edge (`rks edge`, a separate process) for a name whose key it
 * already holds versus a cold name it must first fetch from rks. Run: make bench-handshake
 */
import tls from 'node:tls';
import { issue } from '../tests/support/pki';
import { runRks } from '../tests/support/serve';
import { freePort } from '../tests/support/vault';
import { ADMIN, client, startStack, summary, writeResult } from './lib';

const NAMES = Number(process.env.BENCH_NAMES ?? 200);

function handshake(port: number, servername: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const s = tls.connect({ port, host: '127.0.0.1', servername, ca }, () => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      s.destroy();
      resolve(ms);
    });
    s.on('error', reject);
  });
}

async function main() {
  process.stderr.write(`starting Vault and rks; pushing ${NAMES} certificates\n`);
  const stack = await startStack();
  try {
    const call = client(stack.url, stack.ca);
    const admin = (await call('POST', '/rks/v1/admin/login', undefined, ADMIN)).body.adminToken;
    const groupToken = (await call('POST', '/rks/v1/group/bench', admin, { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' })).body.groupToken;
    const ca = await issue({ name: 'bench sites CA', ca: true });
    const names = Array.from({ length: NAMES }, (_, i) => `site${i}.bench.example`);
    for (const name of names) {
      const leaf = await issue({ name, dns: [name], issuer: ca });
      await call('POST', `/rks/v1/secret/${name}`, admin, { data: { certificate: leaf.certPem, private_key: leaf.keyPem, meta: { ttl: 3600 } } });
      await call('POST', `/rks/v1/group/bench/secrets/${name}`, admin);
    }
    const port = await freePort();
    const caFile = require('node:path').join(require('node:os').tmpdir(), `rks-bench-ca-${process.pid}.pem`);
    require('node:fs').writeFileSync(caFile, stack.ca);
    const edge = runRks(['edge', '--listen', `127.0.0.1:${port}`, '--node-id', 'bench-edge', '--log-level', 'warn'], {
      RKS_URL: stack.url,
      RKS_CA_CERT: caFile,
      RKS_GROUP_TOKEN: groupToken,
    });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await handshake(port, names[0], ca.certPem); // warm the process and the connection to rks
      const cold: number[] = [];
      for (const name of names.slice(1)) cold.push(await handshake(port, name, ca.certPem));
      const cached: number[] = [];
      for (let round = 0; round < 3; round++) for (const name of names.slice(1)) cached.push(await handshake(port, name, ca.certPem));
      const result = {
        command: 'make bench-handshake',
        names: NAMES,
        cold: summary(cold),
        cached: summary(cached),
        coldOverCachedP50: Math.round((summary(cold).p50Ms / summary(cached).p50Ms) * 100) / 100,
      };
      const file = writeResult('handshake', result);
      process.stdout.write(
        [
          '| handshake at the edge | n | mean ms | p50 ms | p99 ms |',
          '| --- | --- | --- | --- | --- |',
          `| cached name (key in memory) | ${result.cached.n} | ${result.cached.meanMs} | ${result.cached.p50Ms} | ${result.cached.p99Ms} |`,
          `| cold name (fetched from rks) | ${result.cold.n} | ${result.cold.meanMs} | ${result.cold.p50Ms} | ${result.cold.p99Ms} |`,
          '',
          `cold / cached at p50: ${result.coldOverCachedP50}   (written to ${file})`,
          '',
        ].join('\n'),
      );
    } finally {
      await edge.stop();
    }
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
