/**
 * make bench-memory: rks's peak memory with PUSHED pushed and MANAGED managed secrets (100,000
 * each by default) in Vault. The secrets' entries and the inventory's catalog are written
 * straight to Vault in rks's layout (building 200,000 through the API takes hours here: see
 * bench-scale for that), then a fresh `rks serve` runs what reads them all: its expiry pass, the
 * whole inventory walked four ways, its reconciliation with the mount, and a few hundred
 * creations through the API that make both read the catalog again. Reported: rks's peak RSS.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { kvPath } from '../src/vault/layout';
import { issue } from '../tests/support/pki';
import { runRks } from '../tests/support/serve';
import { freePort } from '../tests/support/vault';
import { ADMIN, client, listInventory, round, Seed, startStack, writeResult } from './lib';

const PUSHED = Number(process.env.PUSHED ?? 100_000);
const MANAGED = Number(process.env.MANAGED ?? 100_000);
const say = (msg: string) => process.stderr.write(`bench-memory: ${msg}\n`);
const mb = (pid: number, field: 'VmHWM' | 'VmRSS') => round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024, 0);

async function main() {
  say(`${PUSHED} pushed and ${MANAGED} managed secrets written to Vault, then a fresh rks reads them`);
  const stack = await startStack();
  await stack.rks.stop();
  const seed = new Seed(stack.vault, say);
  let rks: ReturnType<typeof runRks> | undefined;
  try {
    const ca = await issue({ name: 'bench memory CA', ca: true });
    const leaf = await issue({ name: '*.memory.bench.example', dns: ['*.memory.bench.example'], issuer: ca });
    const now = Date.now();
    const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString();
    // Each its own facts (names, dates, fingerprint), as the catalog holds them.
    const facts = (name: string, days: number) => ({
      subject: `CN=${name}`,
      sans: [name],
      issuer: 'CN=bench memory CA',
      notBefore: iso(now - 86400_000),
      notAfter: iso(now + days * 86400_000 + Math.random() * 86400_000),
      keyType: 'EC P-256',
      sha256Fingerprint: (createHash('sha256').update(name).digest('hex').toUpperCase().match(/../g) ?? []).join(':'),
      chainLength: 2,
    });
    const spec = (name: string) => ({ issuer: 'rks-ca', sans: [name], keyType: 'ec-p256' as const, lifetime: 10 * 86400 });
    for (let i = 0; i < PUSHED; i++) {
      const name = `p${i}.memory.bench.example`;
      const info = facts(name, 60);
      seed.put(kvPath.secret(name), { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem, meta: { ttl: 300 }, info });
      seed.catalogue(name, { version: 1, info, ttl: 300, groups: [], groupsVersion: 0 });
    }
    for (let i = 0; i < MANAGED; i++) {
      const name = `m${i}.memory.bench.example`;
      const info = facts(name, 10);
      const renewAt = Math.floor(now / 1000) + 86400 + (i % 86400) * 5;
      seed.put(kvPath.secret(name), { managed: spec(name), meta: { ttl: 300 } });
      seed.catalogue(name, { version: 1, info, ttl: 300, managed: spec(name), renewal: { renewAt, failures: 0, lastAttempt: iso(now) }, groups: [], groupsVersion: 0 });
    }
    await seed.flush();

    // A fresh rks: its expiry pass every 10 s, the inventory walked, the catalog changed under it.
    const port = await freePort();
    rks = runRks(['serve', '--listen', `127.0.0.1:${port}`, '--log-level', 'info', '--expiry-check-interval', '10'], {
      RKS_VAULT_ADDR: stack.vault.addr,
      RKS_ADMIN_LOGIN: ADMIN.login,
      RKS_ADMIN_PASSWORD: ADMIN.password,
    });
    await rks.waitFor('rks listening', 30_000);
    const call = client(`https://127.0.0.1:${port}`, stack.ca);
    const admin = (await call('POST', '/rks/v1/admin/login', undefined, ADMIN)).body.adminToken as string;
    await new Promise((r) => setTimeout(r, 15_000));
    const pid = rks.child.pid!;
    say(`after the first expiry pass: RSS ${mb(pid, 'VmRSS')} MB, peak ${mb(pid, 'VmHWM')} MB`);
    const inventory = {
      all: await listInventory(call, admin),
      scheduled: await listInventory(call, admin, '&renewal=scheduled'),
      failing: await listInventory(call, admin, '&renewal=failing'),
      expiring: await listInventory(call, admin, '&expiring_within=864000'),
    };
    say(`inventory: ${JSON.stringify(inventory)}; RSS ${mb(pid, 'VmRSS')} MB, peak ${mb(pid, 'VmHWM')} MB`);
    // Changes under it: the listing and the expiry pass read the catalog again.
    for (let i = 0; i < 300; i++) {
      const r = await call('POST', `/rks/v1/secret/n${i}-${randomBytes(3).toString('hex')}.memory.bench.example/managed`, admin, { lifetime: 10 * 86400 });
      if (r.status !== 201) throw new Error(`create: ${r.status} ${JSON.stringify(r.body)}`);
    }
    const again = await listInventory(call, admin);
    await new Promise((r) => setTimeout(r, 15_000));
    const result = {
      command: 'make bench-memory',
      date: new Date().toISOString(),
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}`,
      vault: `${stack.vault.version}, dev server (in memory)`,
      pushed: PUSHED,
      managed: MANAGED,
      inventory: { ...inventory, afterChanges: again },
      rksRssMb: mb(pid, 'VmRSS'),
      rksPeakRssMb: mb(pid, 'VmHWM'),
      targets: { peakUnder150Mb: mb(pid, 'VmHWM') <= 150, inventoryUnder10s: inventory.all.ms <= 10_000 && inventory.scheduled.ms <= 10_000 },
    };
    const file = writeResult('memory', result);
    process.stdout.write(
      [
        '| secrets in Vault | inventory, every page: all / `renewal=scheduled` / `failing` / `expiring_within=10d` | again after 300 creations | rks RSS at the end | rks peak RSS |',
        '| --- | --- | --- | --- | --- |',
        `| ${PUSHED} pushed + ${MANAGED} managed | ${inventory.all.ms} / ${inventory.scheduled.ms} / ${inventory.failing.ms} / ${inventory.expiring.ms} ms | ${again.ms} ms | ${result.rksRssMb} MB | ${result.rksPeakRssMb} MB |`,
        `Targets: peak RSS ≤ 150 MB ${result.targets.peakUnder150Mb ? 'met' : 'MISSED'} · every page ≤ 10 s ${result.targets.inventoryUnder10s ? 'met' : 'MISSED'}`,
        `written to ${file}`,
      ].join('\n') + '\n',
    );
  } finally {
    await rks?.stop();
    await stack.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
