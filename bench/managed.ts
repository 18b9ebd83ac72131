/**
 * make bench-scale, managed part: MANAGED managed secrets (100,000 by default) from rks's CA,
 * created through the API on a Vault with integrated (Raft) storage; creation latency as the
 * number grows, a renewal pass with DUE of them due at once (certificates a second, CPU per
 * renewal), the inventory listed whole and filtered by renewal state, and rks's peak memory.
 * Then ACME names from Pebble (which validates every challenge here: PEBBLE_VA_ALWAYS_VALID)
 * under an order budget: the orders in any window, and the issuance rate.
 */
import fs from 'node:fs';
import os from 'node:os';
import { startPebble } from '../tests/support/pebble';
import { issue } from '../tests/support/pki';
import { ADMIN, client, cpuSeconds, listInventory, metricSum, raftVault, round, startStack, summary, writeResult } from './lib';

const MANAGED = Number(process.env.MANAGED || 100_000);
const DUE = Math.min(Number(process.env.DUE || 10_000), MANAGED);
const CONCURRENCY = Number(process.env.BUILD_CONCURRENCY || 8);
const ACME = process.env.ACME ? Number(process.env.ACME) : 10_000;
/** Pushed secrets added after the managed ones, before the inventory and memory are measured. */
const PUSHED = process.env.PUSHED ? Number(process.env.PUSHED) : 100_000;
/** The ACME issuer's order budget: orders per window (seconds). */
const ACME_BUDGET = { orders: Number(process.env.ACME_ORDERS || 600), windowSeconds: Number(process.env.ACME_WINDOW || 60) };
const say = (msg: string) => process.stderr.write(`bench-scale (managed): ${msg}\n`);

const peakRssMb = (pid: number) => round(Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024, 0);

async function main() {
  say(`a one-node Vault with Raft storage, rks in front; ${MANAGED} managed secrets from rks's CA, ${DUE} of them renewed at once`);
  const stack = await startStack([], {}, [], await raftVault());
  try {
    const call = client(stack.url, stack.ca);
    const login = async () => (await call('POST', '/rks/v1/admin/login', undefined, ADMIN)).body.adminToken as string;
    let admin = await login();
    let loggedIn = Date.now();
    const names = Array.from({ length: MANAGED }, (_, i) => `m${i}.managed.bench.example`);

    // Creation through the API, 10-day certificates renewed at two thirds. Latency is timed one
    // request at a time (the first and the last 1,000, and 200 after every 10,000), so that it
    // says what a creation costs at that size, not how long it queued behind the bench's own;
    // the rest go CONCURRENCY at a time, for the build time.
    const create = async (i: number) => {
      if (Date.now() - loggedIn > 1800_000) {
        loggedIn = Date.now();
        admin = await login();
      }
      const t0 = process.hrtime.bigint();
      // As a client should: a 503 (Vault slow to answer) is tried again shortly; a 409 after it means the first try landed.
      let r = await call('POST', `/rks/v1/secret/${names[i]}/managed`, admin, { lifetime: 10 * 86400 });
      for (let attempt = 1; r.status === 503 && attempt < 5; attempt++) {
        await new Promise((next) => setTimeout(next, 1000));
        r = await call('POST', `/rks/v1/secret/${names[i]}/managed`, admin, { lifetime: 10 * 86400 });
        if (r.status === 409) r = { ...r, status: 201 };
      }
      if (r.status !== 201) throw new Error(`create ${names[i]}: ${r.status} ${JSON.stringify(r.body)}`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const started = Date.now();
    let made = 0;
    let reported = Date.now();
    const build = async (count: number, concurrency: number, timed?: number[]) => {
      const end = made + count;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let i = made++; i < end; i = made++) {
            const ms = await create(i);
            timed?.push(ms);
            if (Date.now() - reported > 30_000) {
              reported = Date.now();
              say(`created ${i} of ${MANAGED} (${round((i * 1000) / (Date.now() - started), 0)}/s)`);
            }
          }
        }),
      );
      made = end;
    };
    const sample = Math.min(1000, Math.floor(MANAGED / 2));
    const first: number[] = [];
    await build(sample, 1, first);
    const growth: { at: number; p50Ms: number }[] = [];
    while (made < MANAGED - sample) {
      await build(Math.min(10_000 - 200, MANAGED - sample - made), CONCURRENCY);
      if (made >= MANAGED - sample) break;
      const probe: number[] = [];
      await build(Math.min(200, MANAGED - sample - made), 1, probe);
      growth.push({ at: made, p50Ms: summary(probe).p50Ms });
      say(`p50 of one creation at a time, at ${made}: ${summary(probe).p50Ms} ms`);
    }
    const last: number[] = [];
    await build(MANAGED - made, 1, last);
    const buildMs = Date.now() - started;
    const [firstP, lastP] = [summary(first), summary(last)];
    say(`built in ${round(buildMs / 1000, 1)} s; p50 first ${sample} ${firstP.p50Ms} ms, last ${sample} ${lastP.p50Ms} ms`);

    // DUE of them due now: their state and mark moved, as time would (root, straight to Vault).
    const root = { 'X-Vault-Token': stack.vault.rootToken, 'Content-Type': 'application/json' };
    const vault = async (method: string, p: string, body?: unknown) => {
      const r = await fetch(`${stack.vault.addr}/v1/${p}`, { method, headers: root, body: body === undefined ? undefined : JSON.stringify(body) });
      if (!r.ok) throw new Error(`${method} ${p}: ${r.status}`);
      return r.status === 204 ? null : r.json();
    };
    const now = Math.floor(Date.now() / 1000);
    // Counted from rks's metrics: its log, as the bench keeps it, is cut at a few MB.
    const renewed = () => metricSum(stack.url, stack.ca, 'rks_managed_renewals_total', 'issuer="rks-ca"', 'result="renewed"');
    const renewedBefore = await renewed();
    let k = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = k++; i < DUE; i = k++) {
          const n = names[i]!;
          const s = ((await vault('GET', `rks/data/managed/state/${n}`)) as any).data;
          await vault('POST', `rks/data/managed/due/${Math.floor(now / 3600)}/${now}-${n}`, { data: {} });
          await vault('POST', `rks/data/managed/state/${n}`, { data: { ...s.data, renewAt: now }, options: { cas: s.metadata.version } });
          await vault('DELETE', `rks/metadata/managed/due/${Math.floor(s.data.renewAt / 3600)}/${s.data.renewAt}-${n}`);
        }
      }),
    );
    say(`${DUE} made due; waiting for rks's renewal pass (every 30 s)`);
    const cpu0 = { rks: cpuSeconds(stack.rks.child.pid!), vault: cpuSeconds(stack.vault.pid) };
    const t0 = Date.now();
    let firstRenewal = 0;
    for (;;) {
      const done = (await renewed()) - renewedBefore;
      if (done > 0 && !firstRenewal) firstRenewal = Date.now();
      if (done >= DUE) break;
      if (Date.now() - t0 > 3600_000) throw new Error(`only ${done} of ${DUE} renewed in an hour`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const renewMs = Date.now() - firstRenewal;
    const cpu = { rks: cpuSeconds(stack.rks.child.pid!) - cpu0.rks, vault: cpuSeconds(stack.vault.pid) - cpu0.vault };
    const renewal = {
      due: DUE,
      seconds: round(renewMs / 1000, 1),
      perSecond: round((DUE * 1000) / renewMs, 1),
      cpuMsPerRenewal: { rks: round((cpu.rks * 1000) / DUE, 1), vault: round((cpu.vault * 1000) / DUE, 1) },
    };
    say(`renewal: ${JSON.stringify(renewal)}`);

    admin = await login();
    const pushed = PUSHED > 0 ? await pushPhase(call, admin) : undefined;
    admin = await login();
    const inventory = {
      first: await listInventory(call, admin),
      again: await listInventory(call, admin),
      scheduled: await listInventory(call, admin, '&renewal=scheduled'),
      failing: await listInventory(call, admin, '&renewal=failing'),
    };
    const acme = ACME > 0 ? await acmePhase(stack, call, admin) : undefined;
    const result = {
      command: 'make bench-scale (managed)',
      date: new Date().toISOString(),
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}`,
      vault: `${stack.vault.version}, one node, integrated (Raft) storage, plain HTTP on loopback`,
      managed: MANAGED,
      ...(pushed ? { pushed } : {}),
      build: { ms: buildMs, concurrency: CONCURRENCY, first1000: firstP, last1000: lastP, growth },
      renewal,
      inventory,
      rksPeakRssMb: peakRssMb(stack.rks.child.pid!),
      ...(acme ? { acme } : {}),
      targets: {
        creationFlat: lastP.p50Ms <= 1.2 * firstP.p50Ms && lastP.p50Ms <= 50,
        inventoryUnder10s: inventory.first.ms <= 10_000 && inventory.scheduled.ms <= 10_000,
        ...(acme ? { acmeWithinBudget: acme.maxInWindow <= ACME_BUDGET.orders } : {}),
      },
    };
    const file = writeResult(`scale-managed-${MANAGED}`, result);
    process.stdout.write(`${table(result)}\nwritten to ${file}\n`);
  } finally {
    await stack.stop();
  }
}

/** PUSHED secrets (one wildcard certificate under each name), CONCURRENCY at a time. */
async function pushPhase(call: ReturnType<typeof client>, admin: string) {
  const ca = await issue({ name: 'bench managed CA', ca: true });
  const leaf = await issue({ name: '*.pushed.bench.example', dns: ['*.pushed.bench.example'], issuer: ca });
  const body = { data: { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem, meta: { ttl: 300 } } };
  say(`${PUSHED} pushed secrets beside them`);
  const t0 = Date.now();
  let k = 0;
  let reported = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = k++; i < PUSHED; i = k++) {
        let r = await call('POST', `/rks/v1/secret/p${i}.pushed.bench.example`, admin, body);
        for (let attempt = 1; r.status === 503 && attempt < 5; attempt++) {
          await new Promise((next) => setTimeout(next, 1000));
          r = await call('POST', `/rks/v1/secret/p${i}.pushed.bench.example`, admin, body);
          if (r.status === 409) r = { ...r, status: 201 };
        }
        if (r.status !== 201) throw new Error(`push p${i}: ${r.status} ${JSON.stringify(r.body)}`);
        if (Date.now() - reported > 30_000) {
          reported = Date.now();
          say(`pushed ${i} of ${PUSHED}`);
        }
      }
    }),
  );
  return { count: PUSHED, ms: Date.now() - t0 };
}

/**
 * ACME names through Pebble under a budget: created at once, obtained by rks's background passes,
 * the orders counted from rks's metrics every second.
 */
async function acmePhase(stack: Awaited<ReturnType<typeof startStack>>, call: ReturnType<typeof client>, admin: string) {
  process.env.PEBBLE_VA_ALWAYS_VALID = '1';
  const pebble = await startPebble({ httpPort: 5002, validitySeconds: 90 * 86400 });
  try {
    const issuer = { directory: pebble.directory, caBundle: pebble.tlsCa, termsOfServiceAgreed: true, orderBudget: ACME_BUDGET };
    const made = await call('POST', '/rks/v1/acme/issuers/pebble', admin, issuer);
    if (made.status !== 201) throw new Error(`issuer: ${made.status} ${JSON.stringify(made.body)}`);
    const names = Array.from({ length: ACME }, (_, i) => `a${i}.acme.bench.example`);
    say(`ACME: ${ACME} names from Pebble, ${ACME_BUDGET.orders} orders per ${ACME_BUDGET.windowSeconds} s`);
    const t0 = Date.now();
    let k = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = k++; i < ACME; i = k++) {
          const r = await call('POST', `/rks/v1/secret/${names[i]}/managed`, admin, { issuer: 'pebble' });
          if (r.status !== 202) throw new Error(`create ${names[i]}: ${r.status} ${JSON.stringify(r.body)}`);
        }
      }),
    );
    const createdMs = Date.now() - t0;
    // Counted from rks's metrics every second (its log, as the bench keeps it, is cut at a few MB).
    const issued = () => metricSum(stack.url, stack.ca, 'rks_managed_renewals_total', 'issuer="pebble"', 'result="renewed"');
    const orders = () => metricSum(stack.url, stack.ca, 'rks_acme_orders_total', 'issuer="pebble"');
    const samples: [number, number][] = [];
    let reported = Date.now();
    let last = 0;
    let lastMoved = Date.now();
    for (;;) {
      const [n, o] = await Promise.all([issued(), orders()]);
      samples.push([Date.now(), o]);
      if (n >= ACME) break;
      if (n !== last) lastMoved = Date.now();
      if (Date.now() - lastMoved > 600_000) throw new Error(`only ${n} of ${ACME} ACME certificates, and none for ten minutes`);
      last = n;
      if (Date.now() - reported > 30_000) {
        reported = Date.now();
        say(`ACME: ${n} of ${ACME} issued, ${o} orders`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    // The most orders finished between two samples less than a window apart. An order counts
    // when it finishes, so one placed just before a window and finished in it counts too.
    let maxInWindow = 0;
    for (let i = 0, j = 0; i < samples.length; i++) {
      while (samples[i]![0] - samples[j]![0] > ACME_BUDGET.windowSeconds * 1000) j++;
      maxInWindow = Math.max(maxInWindow, samples[i]![1] - samples[j]![1]);
    }
    const seconds = (samples[samples.length - 1]![0] - t0) / 1000;
    return { names: ACME, budget: ACME_BUDGET, createdMs, seconds: round(seconds, 1), perSecond: round(ACME / seconds, 1), maxInWindow };
  } finally {
    await pebble.stop();
  }
}

function table(r: any): string {
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  return [
    `Built on ${r.vault}: ${r.managed} managed secrets from rks's CA in ${round(r.build.ms / 1000, 1)} s (${r.build.concurrency} requests at a time; latency timed one request at a time)` +
      (r.pushed ? `, then ${r.pushed.count} pushed secrets in ${round(r.pushed.ms / 1000, 1)} s.` : '.'),
    '',
    '| secrets | creation p50 / p99, first 1,000 | creation p50 / p99, last 1,000 | renewal of a batch due at once | rks / Vault CPU per renewal | inventory, every page: all / renewal=scheduled | rks peak RSS |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    `| ${r.managed} managed${r.pushed ? ` + ${r.pushed.count} pushed` : ''} | ${r.build.first1000.p50Ms} / ${r.build.first1000.p99Ms} ms | ${r.build.last1000.p50Ms} / ${r.build.last1000.p99Ms} ms | ${r.renewal.due} in ${r.renewal.seconds} s (${r.renewal.perSecond}/s) | ${r.renewal.cpuMsPerRenewal.rks} / ${r.renewal.cpuMsPerRenewal.vault} ms | ${r.inventory.first.ms} / ${r.inventory.scheduled.ms} ms | ${r.rksPeakRssMb} MB |`,
    '',
    ...(r.acme
      ? [
          '',
          '| ACME names (Pebble) | budget | created through the API | all issued after | issuance rate | most orders in any window |',
          '| --- | --- | --- | --- | --- | --- |',
          `| ${r.acme.names} | ${r.acme.budget.orders} per ${r.acme.budget.windowSeconds} s | ${round(r.acme.createdMs / 1000, 1)} s | ${r.acme.seconds} s | ${r.acme.perSecond}/s | ${r.acme.maxInWindow} |`,
        ]
      : []),
    '',
    `Targets: creation p50 at the end within 1.2× of the first 1,000 and ≤ 50 ms ${mark(r.targets.creationFlat)} · inventory ≤ 10 s ${mark(r.targets.inventoryUnder10s)}` +
      (r.acme ? ` · ACME orders within the budget ${mark(r.targets.acmeWithinBudget)}` : ''),
  ].join('\n');
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
