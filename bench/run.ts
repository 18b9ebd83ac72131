/**
 * make bench: rks's hot paths measured side by side with Vault itself, in one run.
 * Starts its own OpenBao/Vault dev server (in-memory storage) and the built `rks serve`
 * (TLS on, info logging), seeds data, and drives both with autocannon.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { startMockCallbackServer } from '../mock-callback-server/server';
import { issue } from '../tests/support/pki';
import { runRks } from '../tests/support/serve';
import { freePort } from '../tests/support/vault';
import { ADMIN, DURATION, Load, WARMUP, client, listInventory, load, round, startStack, summary, withCpu, writeResult } from './lib';

const say = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

/** Highest resident set size of a process while `fn` runs, in MB. */
async function peakRss<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; mb: number }> {
  let peak = 0;
  const sample = () => {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (m) peak = Math.max(peak, Number(m[1]) / 1024);
  };
  const timer = setInterval(sample, 100);
  try {
    const result = await fn();
    sample();
    return { result, mb: round(peak, 1) };
  } finally {
    clearInterval(timer);
  }
}

async function main() {
  say(`starting OpenBao/Vault (dev server, in-memory storage) and rks (TLS, info logs); ${DURATION}s a run`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-bench-'));
  const mockCa = await issue({ name: 'bench manager CA', ca: true });
  const mockCert = await issue({ name: 'bench manager', issuer: mockCa, ips: ['127.0.0.1'] });
  fs.writeFileSync(path.join(dir, 'mock-ca.pem'), mockCa.certPem);
  const mock = await startMockCallbackServer({ cert: mockCert.certPem, key: mockCert.keyPem, clientId: 'bench', clientSecret: 'bench-secret' });
  const stack = await startStack(['--callback-ca-file', path.join(dir, 'mock-ca.pem')]);
  const rksPid = stack.rks.child.pid!;
  let rssMb = 0;
  const measureRss = async <T>(fn: () => Promise<T>) => {
    const { result, mb } = await peakRss(rksPid, fn);
    rssMb = Math.max(rssMb, mb);
    return result;
  };

  try {
    const call = client(stack.url, stack.ca);
    const admin = (await call('POST', '/rks/v1/admin/login', undefined, ADMIN)).body.adminToken as string;
    const noCallback = { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' };
    const sites = await issue({ name: 'bench sites CA', ca: true });
    const push = async (name: string) => {
      const leaf = await issue({ name, dns: [name], issuer: sites });
      const r = await call('POST', `/rks/v1/secret/${name}`, admin, { data: { certificate: leaf.certPem, private_key: leaf.keyPem, meta: { ttl: 300 } } });
      if (r.status !== 201) throw new Error(`push ${name}: ${r.status}`);
    };
    const associate = async (g: string, name: string) => {
      const t0 = process.hrtime.bigint();
      const r = await call('POST', `/rks/v1/group/${g}/secrets/${name}`, admin);
      if (r.status !== 201) throw new Error(`associate ${name}: ${r.status} ${JSON.stringify(r.body)}`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };

    // --- GET /rks/v1/secret/{fqdn} versus the same KV read straight from Vault ---
    const hot = 'hot.bench.example';
    const groupToken = (await call('POST', '/rks/v1/group/bench', admin, noCallback)).body.groupToken as string;
    await push(hot);
    await associate('bench', hot);
    const nodeToken = (await call('POST', '/rks/v1/node', groupToken, undefined, { 'X-LCDN-nodeId': 'bench-node' })).body.nodeToken as string;
    const rksUrl = `${stack.url}/rks/v1/secret/${hot}`;
    // What the node reads in Vault: its group's copy.
    const vaultUrl = `${stack.vault.addr}/v1/rks/data/groups/bench/secrets/${hot}`;
    const headers = { 'X-Vault-Token': nodeToken };
    const pids = { rks: rksPid, vault: stack.vault.pid };
    const getSecret: Record<string, { rks: Load; vault: Load; ratio: number }> = {};
    for (const connections of [1, 10, 50]) {
      say(`GET secret, ${connections} connection(s): Vault directly, then through rks`);
      await load(vaultUrl, { connections, headers, duration: WARMUP });
      const vault = await withCpu(pids, () => load(vaultUrl, { connections, headers }));
      await load(rksUrl, { connections, headers, duration: WARMUP });
      const rks = await measureRss(() => withCpu(pids, () => load(rksUrl, { connections, headers })));
      getSecret[connections] = { rks, vault, ratio: round(rks.rps / vault.rps) };
    }

    // The same through a second rks with --no-tls: how much of the gap is TLS to the client.
    say('GET secret, 50 connections, through an rks with --no-tls');
    const plainPort = await freePort();
    const plain = runRks(['serve', '--listen', `127.0.0.1:${plainPort}`, '--no-tls', '--log-level', 'info'], {
      RKS_VAULT_ADDR: stack.vault.addr,
      RKS_ADMIN_LOGIN: ADMIN.login,
      RKS_ADMIN_PASSWORD: ADMIN.password,
    });
    await plain.waitFor('rks listening');
    const plainUrl = `http://127.0.0.1:${plainPort}/rks/v1/secret/${hot}`;
    await load(plainUrl, { connections: 50, headers, duration: WARMUP });
    const noTls = await withCpu({ rks: plain.child.pid!, vault: stack.vault.pid }, () => load(plainUrl, { connections: 50, headers }));
    await plain.stop();

    // Node's floor: its HTTP server and one undici request to Vault, nothing of rks's own.
    say('GET secret, 50 connections, through Node\'s floor (bench/floor.js)');
    const floorPort = await freePort();
    const floorProc = spawn(process.execPath, [path.join(__dirname, 'floor.js'), stack.vault.addr, `/v1/rks/data/groups/bench/secrets/${hot}`, String(floorPort)], {
      stdio: 'ignore',
    });
    await new Promise((r) => setTimeout(r, 500));
    const floorUrl = `http://127.0.0.1:${floorPort}/`;
    await load(floorUrl, { connections: 50, headers, duration: WARMUP });
    const floor = await withCpu({ rks: floorProc.pid!, vault: stack.vault.pid }, () => load(floorUrl, { connections: 50, headers }));
    floorProc.kill();

    // --- registrations, without and with callback verification ---
    say('node registrations: without a callback, then with the mock callback');
    let n = 0;
    const register = (token: string) =>
      measureRss(() =>
        load(`${stack.url}/rks/v1/node`, {
          connections: 10,
          method: 'POST',
          headers: { 'X-Vault-Token': token },
          requests: [
            {
              setupRequest: (req: any) => {
                const id = `n${n++}`;
                mock.allowed.add(id);
                return { ...req, headers: { ...req.headers, 'X-LCDN-nodeId': id } };
              },
            },
          ],
          duration: Math.max(3, Math.round(DURATION / 2)),
        }),
      );
    const plainReg = await register(groupToken);
    const cbToken = (
      await call('POST', '/rks/v1/group/bench-cb', admin, {
        callbackURL: mock.callbackURL,
        oauthURL: mock.oauthURL,
        oauthClientID: 'bench',
        oauthClientSecret: 'bench-secret',
      })
    ).body.groupToken as string;
    const cbReg = await register(cbToken);

    // --- a burst of registrations on callback groups while another client reads a secret ---
    say('a burst of 300 registrations on callback groups while another client reads a secret');
    const burst = await registrationBurst(stack, call, admin, mock, rksUrl, headers, rksPid);

    // --- association latency as the group grows; reads from a 1000-secret group ---
    say('pushing 1030 secrets and associating them one by one');
    const names = Array.from({ length: 1030 }, (_, i) => `s${i}.big.bench.example`);
    for (let i = 0; i < names.length; i += 10) await Promise.all(names.slice(i, i + 10).map(push));
    await call('POST', '/rks/v1/group/big', admin, noCallback);
    const association: Record<string, ReturnType<typeof summary>> = {};
    let i = 0;
    for (const size of [10, 100, 1000]) {
      while (i < size) await associate('big', names[i++]);
      const ms: number[] = [];
      for (let k = 0; k < 10; k++) ms.push(await associate('big', names[i++]));
      association[size] = summary(ms);
      // leave the group at exactly the next checkpoint's starting point
    }
    const bigToken = (await call('GET', '/rks/v1/group/big/grouptoken', admin)).body.groupToken as string;
    const bigNode = (await call('POST', '/rks/v1/node', bigToken, undefined, { 'X-LCDN-nodeId': 'big-node' })).body.nodeToken as string;
    say('GET secret for a node of the 1000-secret group, 50 connections');
    const bigUrl = `${stack.url}/rks/v1/secret/${names[500]}`;
    // What the node reads in Vault: its group's copy.
    const bigVaultUrl = `${stack.vault.addr}/v1/rks/data/groups/big/secrets/${names[500]}`;
    await load(bigUrl, { connections: 50, headers: { 'X-Vault-Token': bigNode }, duration: WARMUP });
    const bigGet = await measureRss(() => load(bigUrl, { connections: 50, headers: { 'X-Vault-Token': bigNode } }));
    const bigVault = await load(bigVaultUrl, { connections: 50, headers: { 'X-Vault-Token': bigNode } });

    // --- the inventory of 10 000 secrets (the 1030 above plus 8970 more under one wildcard) ---
    say('pushing 8970 more secrets, then listing the inventory of 10 000');
    const inventory = await inventoryListing(call, admin, 10_000 - names.length);

    const g50 = getSecret[50];
    const result = {
      command: 'make bench',
      date: new Date().toISOString(),
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}`,
      vault: `${stack.vault.version} dev server, in-memory storage, plain HTTP on loopback`,
      rks: 'built rks serve, HTTPS (certificate from its CA), info logging',
      durationSeconds: DURATION,
      getSecret: {
        connections: 50,
        rksRps: g50.rks.rps,
        vaultRps: g50.vault.rps,
        ratio: g50.ratio,
        rksP50Ms: g50.rks.p50Ms,
        vaultP50Ms: g50.vault.p50Ms,
        rksP99Ms: g50.rks.p99Ms,
        vaultP99Ms: g50.vault.p99Ms,
        byConnections: getSecret,
        rksWithoutTls: { ...noTls, ratio: round(noTls.rps / g50.vault.rps) },
        nodeFloor: { ...floor, ratio: round(floor.rps / g50.vault.rps) },
      },
      registration: {
        connections: 10,
        withoutCallback: plainReg,
        withCallback: cbReg,
      },
      registrationBurst: burst,
      association: { bySecretsInGroup: association },
      getSecretFrom1000SecretGroup: {
        connections: 50,
        rks: bigGet,
        vault: bigVault,
        ratio: round(bigGet.rps / bigVault.rps),
        vaultRpsComparedToOneSecretGroup: round(bigVault.rps / g50.vault.rps),
      },
      inventory,
      rksPeakRssMb: rssMb,
      targets: {
        ratioAtLeast08: g50.ratio >= 0.8,
        p99AtMostTwiceVault: g50.rks.p99Ms <= 2 * g50.vault.p99Ms,
        associationInto1000Under100ms: association[1000].p50Ms <= 100,
        rssUnder150Mb: rssMb <= 150,
      },
    };
    const file = writeResult('latest', result);
    const errors = [...Object.values(getSecret).flatMap((x) => [x.rks.errors, x.vault.errors]), noTls.errors, floor.errors, plainReg.errors, cbReg.errors, bigGet.errors, bigVault.errors];
    process.stdout.write(`${table(result)}\nwritten to ${file}\n`);
    if (errors.some((e) => e > 0)) say(`WARNING: some requests failed (${errors.join(', ')}); see the JSON`);
  } finally {
    await stack.stop();
    await mock.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Fills rks up to 10 000 secrets (one wildcard certificate serves them all), then times the
 * listing a script would make: every page of 1000 in name order, and the expiry filter.
 */
async function inventoryListing(call: ReturnType<typeof client>, admin: string, more: number) {
  const ca = await issue({ name: 'bench inventory CA', ca: true });
  const leaf = await issue({ name: '*.inv.bench.example', dns: ['*.inv.bench.example'], issuer: ca });
  const body = { data: { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem } };
  const names = Array.from({ length: more }, (_, i) => `s${i}.inv.bench.example`);
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(
      names.slice(i, i + 20).map(async (n) => {
        const r = await call('POST', `/rks/v1/secret/${n}`, admin, body);
        if (r.status !== 201) throw new Error(`push ${n}: ${r.status}`);
      }),
    );
  }
  return { all: await listInventory(call, admin), expiringWithin60Days: await listInventory(call, admin, `&expiring_within=${60 * 86400}`) };
}

/** Resident set size of a process now, in MB. */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? round(Number(m[1]) / 1024, 1) : 0;
}

/**
 * 300 node registrations on three callback groups, all sent at once on fresh connections,
 * while a steady reader (its own worker thread, 100 req/s) reads a secret: the reader's
 * latency with and without the burst, and rks's memory before, during and after it.
 */
async function registrationBurst(
  stack: Awaited<ReturnType<typeof startStack>>,
  call: ReturnType<typeof client>,
  admin: string,
  mock: Awaited<ReturnType<typeof startMockCallbackServer>>,
  readUrl: string,
  readHeaders: Record<string, string>,
  rksPid: number,
) {
  const reader = (seconds: number) =>
    autocannon({ url: readUrl, headers: readHeaders, connections: 2, connectionRate: 50, duration: seconds, workers: 1 } as autocannon.Options);
  const latency = (r: autocannon.Result) => ({ rps: round(r.requests.average, 0), p50Ms: r.latency.p50, p99Ms: r.latency.p99, maxMs: r.latency.max, errors: r.errors + r.non2xx });
  const baseline = latency(await reader(4));

  const tokens: string[] = [];
  for (let g = 0; g < 3; g++) {
    const res = await call('POST', `/rks/v1/group/burst-${g}`, admin, {
      callbackURL: mock.callbackURL,
      oauthURL: mock.oauthURL,
      oauthClientID: 'bench',
      oauthClientSecret: 'bench-secret',
    });
    tokens.push(res.body.groupToken as string);
  }
  const ids = Array.from({ length: 300 }, (_, i) => `burst-${i}`);
  for (const id of ids) mock.allowed.add(id);
  // Fresh connections for every registration, as many edges coming up at once would open.
  const fresh = client(stack.url, stack.ca, false);
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rss(rksPid))), 50);
  const rssBeforeMb = rss(rksPid);
  const during = reader(8);
  await new Promise((r) => setTimeout(r, 1500));
  const started = Date.now();
  const answers = await Promise.all(
    ids.map((id, i) => fresh('POST', '/rks/v1/node', tokens[i % 3], undefined, { 'X-LCDN-nodeId': id }).then((r) => r.status, () => 0)),
  );
  const wallMs = Date.now() - started;
  const readerDuring = latency(await during);
  await new Promise((r) => setTimeout(r, 2000));
  clearInterval(sampler);
  const statuses: Record<string, number> = {};
  for (const s of answers) statuses[s] = (statuses[s] ?? 0) + 1;
  return { registrations: ids.length, statuses, wallMs, readerBaseline: baseline, readerDuring, rssBeforeMb, rssPeakMb: round(peak, 1), rssAfterMb: rss(rksPid) };
}

function table(r: any): string {
  const rows = [
    '| GET /rks/v1/secret/{fqdn} | rks req/s | Vault req/s | rks ÷ Vault | rks p50 / p99 ms | Vault p50 / p99 ms |',
    '| --- | --- | --- | --- | --- | --- |',
    ...Object.entries(r.getSecret.byConnections).map(
      ([c, x]: [string, any]) =>
        `| ${c} connection(s) | ${x.rks.rps} | ${x.vault.rps} | **${x.ratio}** | ${x.rks.p50Ms} / ${x.rks.p99Ms} | ${x.vault.p50Ms} / ${x.vault.p99Ms} |`,
    ),
    `| 50 connections, rks with --no-tls | ${r.getSecret.rksWithoutTls.rps} | ${r.getSecret.byConnections[50].vault.rps} | **${r.getSecret.rksWithoutTls.ratio}** | ${r.getSecret.rksWithoutTls.p50Ms} / ${r.getSecret.rksWithoutTls.p99Ms} | |`,
    `| 50 connections, Node's floor (bench/floor.js, plain HTTP) | ${r.getSecret.nodeFloor.rps} | ${r.getSecret.byConnections[50].vault.rps} | **${r.getSecret.nodeFloor.ratio}** | ${r.getSecret.nodeFloor.p50Ms} / ${r.getSecret.nodeFloor.p99Ms} | |`,
    '',
    `CPU per request at 50 connections: rks ${r.getSecret.byConnections[50].rks.cpuUsPerRequest.rks} µs (HTTPS), ${r.getSecret.rksWithoutTls.cpuUsPerRequest.rks} µs (--no-tls); ` +
      `Node's floor ${r.getSecret.nodeFloor.cpuUsPerRequest.rks} µs; Vault ${r.getSecret.byConnections[50].vault.cpuUsPerRequest.vault} µs (direct), ${r.getSecret.byConnections[50].rks.cpuUsPerRequest.vault} µs (behind rks).`,
    '',
    '| other scenario | result |',
    '| --- | --- |',
    `| POST /rks/v1/node, no callback (10 conn.) | ${r.registration.withoutCallback.rps} req/s, p99 ${r.registration.withoutCallback.p99Ms} ms |`,
    `| POST /rks/v1/node, mock callback (10 conn.) | ${r.registration.withCallback.rps} req/s, p99 ${r.registration.withCallback.p99Ms} ms |`,
    `| burst of ${r.registrationBurst.registrations} callback registrations at once | all answered in ${r.registrationBurst.wallMs} ms (${JSON.stringify(r.registrationBurst.statuses)}); ` +
      `another client's GET secret p99 ${r.registrationBurst.readerDuring.p99Ms} ms, max ${r.registrationBurst.readerDuring.maxMs} ms ` +
      `(without the burst: p99 ${r.registrationBurst.readerBaseline.p99Ms} ms, max ${r.registrationBurst.readerBaseline.maxMs} ms); ` +
      `rks RSS ${r.registrationBurst.rssBeforeMb} MB before, ${r.registrationBurst.rssPeakMb} MB peak, ${r.registrationBurst.rssAfterMb} MB after |`,
    ...Object.entries(r.association.bySecretsInGroup).map(
      ([n, s]: [string, any]) => `| associate into a group of ${n} secrets | p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms |`,
    ),
    `| GET secret, node of a 1000-secret group (50 conn.) | rks ${r.getSecretFrom1000SecretGroup.rks.rps} req/s (p99 ${r.getSecretFrom1000SecretGroup.rks.p99Ms} ms), Vault directly ${r.getSecretFrom1000SecretGroup.vault.rps} req/s: ratio ${r.getSecretFrom1000SecretGroup.ratio} |`,
    `| list the inventory of ${r.inventory.all.secrets} secrets (${r.inventory.all.pages} pages of 1000) | ${r.inventory.all.ms} ms |`,
    `| same, expiring within 60 days (${r.inventory.expiringWithin60Days.pages} pages) | ${r.inventory.expiringWithin60Days.ms} ms |`,
    `| rks peak resident memory | ${r.rksPeakRssMb} MB |`,
    '',
    `Targets: ratio ≥ 0.8 ${mark(r.targets.ratioAtLeast08)} · p99 ≤ 2 × Vault ${mark(r.targets.p99AtMostTwiceVault)} · ` +
      `association (1000) ≤ 100 ms ${mark(r.targets.associationInto1000Under100ms)} · RSS ≤ 150 MB ${mark(r.targets.rssUnder150Mb)}`,
  ];
  return rows.join('\n');
}

const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
