/**
 * make bench-scale: a CDN's group. One group of SCALE secrets (100,000 by default) and a second
 * group sharing 10,000 of them, built through the API on a Vault with integrated (Raft)
 * storage; then, side by side with a group of 10 secrets: a node's reads (latency, Vault's CPU
 * per read), association and dissociation, an up-to-date edge's revalidation, and listing the
 * whole inventory.
 */
import https from 'node:https';
import os from 'node:os';
import { issue } from '../tests/support/pki';
import { ADMIN, DURATION, WARMUP, client, listInventory, load, raftVault, round, startStack, summary, withCpu, writeResult } from './lib';

const SCALE = Number(process.env.SCALE || 100_000);
const SHARED = Math.min(10_000, SCALE);
const SMALL = 10;
/** Requests in flight while the groups are built. */
const BUILD_CONCURRENCY = Number(process.env.BUILD_CONCURRENCY || 16);
const say = (msg: string) => process.stderr.write(`bench-scale: ${msg}\n`);
/** Each phase's figures as soon as it ends: an hour of building is not lost to a later phase failing. */
const measured = (phase: string, value: unknown) => say(`${phase}: ${JSON.stringify(value)}`);

async function inParallel(items: string[], what: string, fn: (item: string) => Promise<void>): Promise<number> {
  const started = Date.now();
  let next = 0;
  let done = 0;
  let reported = Date.now();
  await Promise.all(
    Array.from({ length: BUILD_CONCURRENCY }, async () => {
      for (let i = next++; i < items.length; i = next++) {
        await fn(items[i]!);
        done++;
        if (Date.now() - reported > 30_000) {
          reported = Date.now();
          say(`${what}: ${done} of ${items.length} (${round((done * 1000) / (Date.now() - started), 0)}/s)`);
        }
      }
    }),
  );
  return Date.now() - started;
}

/** One request, timed; with the bytes of the answer as they crossed the wire (status line and headers included). */
function wire(url: string, ca: string, headers: Record<string, string>): Promise<{ status: number; etag?: string; bytes: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca, headers, agent: false }, (res) => {
      let raw = '';
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        raw += c;
      });
      res.on('end', () => {
        const head = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n` + res.rawHeaders.reduce((s, v, i) => s + v + (i % 2 ? '\r\n' : ': '), '') + '\r\n';
        resolve({ status: res.statusCode!, etag: res.headers.etag, bytes: bytes + Buffer.byteLength(head), body: raw });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function main() {
  say(`a one-node Vault with Raft storage, rks in front; ${SCALE} secrets in one group, ${SHARED} of them in a second`);
  const stack = await startStack([], {}, [], await raftVault());
  try {
    const call = client(stack.url, stack.ca);
    const login = async () => (await call('POST', '/rks/v1/admin/login', undefined, ADMIN)).body.adminToken as string;
    // An admin token lives an hour: a build that takes longer logs in again, as a client would.
    let admin = await login();
    const noCallback = { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' };
    const ca = await issue({ name: 'bench scale CA', ca: true });
    const leaf = await issue({ name: '*.scale.bench.example', dns: ['*.scale.bench.example'], issuer: ca });
    const body = { data: { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem, meta: { ttl: 300 } } };
    const ok = (what: string, r: { status: number; body: unknown }, status: number) => {
      if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
    };
    // As a client should: a 503 or 423 (Vault slow or busy, a concurrent change) is tried again
    // shortly; a 409 that says the earlier try had landed after all (`done`) is success.
    const patient = async (method: string, p: string, payload: unknown, done: string) => {
      for (let attempt = 1; ; attempt++) {
        const r = await call(method, p, admin, payload);
        if (r.status === 403 && attempt < 5) {
          admin = await login();
          continue;
        }
        if (attempt > 1 && r.status === 409 && (r.body as { code?: string })?.code === done) return { ...r, status: method === 'POST' ? 201 : r.status };
        if (attempt === 5 || (r.status !== 503 && r.status !== 423)) return r;
        await new Promise((next) => setTimeout(next, 1000));
      }
    };
    const push = async (n: string) => ok(`push ${n}`, await patient('POST', `/rks/v1/secret/${n}`, body, 'already_exists'), 201);
    const associate = async (g: string, n: string) =>
      ok(`associate ${n} with ${g}`, await patient('POST', `/rks/v1/group/${g}/secrets/${n}`, undefined, 'already_associated'), 201);
    const timed = async (fn: () => Promise<void>) => {
      const t0 = process.hrtime.bigint();
      await fn();
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };

    const groupToken: Record<string, string> = {};
    for (const g of ['huge', 'shared', 'small']) groupToken[g] = (await call('POST', `/rks/v1/group/${g}`, admin, noCallback)).body.groupToken;
    const names = Array.from({ length: SCALE }, (_, i) => `s${i}.scale.bench.example`);
    const small = Array.from({ length: SMALL }, (_, i) => `small${i}.scale.bench.example`);

    say(`building: pushing ${SCALE + SMALL} secrets`);
    const pushMs = await inParallel([...names, ...small], 'push', push);
    say(`building: associating ${SCALE} secrets with 'huge'`);
    const hugeMs = await inParallel(names, 'associate huge', (n) => associate('huge', n));
    say(`building: associating ${SHARED} of them with 'shared', ${SMALL} others with 'small'`);
    const sharedMs = await inParallel(names.slice(0, SHARED), 'associate shared', (n) => associate('shared', n));
    for (const n of small) await associate('small', n);
    admin = await login(); // a fresh token for what is measured

    const nodeToken: Record<string, string> = {};
    for (const g of ['huge', 'small']) {
      nodeToken[g] = (await call('POST', '/rks/v1/node', groupToken[g], undefined, { 'X-LCDN-nodeId': `${g}-node` })).body.nodeToken;
    }
    const pids = { rks: stack.rks.child.pid!, vault: stack.vault.pid };
    const read = { huge: names[Math.floor(SCALE / 2)]!, small: small[5]! };
    const reads: Record<string, unknown> = {};
    for (const g of ['small', 'huge'] as const) {
      const headers = { 'X-Vault-Token': nodeToken[g]! };
      const rksUrl = `${stack.url}/rks/v1/secret/${read[g]}`;
      const vaultUrl = `${stack.vault.addr}/v1/rks/data/groups/${g}/secrets/${read[g]}`;
      say(`a node of '${g}' reads a secret, 50 connections: through rks, then Vault directly`);
      await load(rksUrl, { connections: 50, headers, duration: WARMUP });
      const viaRks = await withCpu(pids, () => load(rksUrl, { connections: 50, headers }));
      await load(vaultUrl, { connections: 50, headers, duration: WARMUP });
      const direct = await withCpu(pids, () => load(vaultUrl, { connections: 50, headers }));
      reads[g] = { rks: viaRks, vault: direct };
      measured(`reads ${g}`, reads[g]);
    }

    say('association and dissociation, 30 each, into the small group and into the huge one');
    const changes: Record<string, unknown> = {};
    for (const g of ['small', 'huge'] as const) {
      const fresh = Array.from({ length: 30 }, (_, i) => `${g}-change${i}.scale.bench.example`);
      for (const n of fresh) await push(n);
      const assoc: number[] = [];
      const dissoc: number[] = [];
      for (const n of fresh) assoc.push(await timed(() => associate(g, n)));
      for (const n of fresh) dissoc.push(await timed(async () => ok(`dissociate ${n}`, await call('DELETE', `/rks/v1/group/${g}/secrets/${n}`, admin), 204)));
      changes[g] = { associate: summary(assoc), dissociate: summary(dissoc) };
      measured(`changes ${g}`, changes[g]);
    }

    say('revalidation of an edge that holds the list, and of one that does not');
    const revalidation: Record<string, unknown> = {};
    for (const g of ['small', 'huge'] as const) {
      const url = `${stack.url}/rks/v1/node/secrets`;
      const headers = { 'X-Vault-Token': nodeToken[g]! };
      const full = await wire(url, stack.ca, headers);
      const current = await wire(url, stack.ca, { ...headers, 'If-None-Match': full.etag ?? '' });
      revalidation[g] = { full: { status: full.status, bytes: full.bytes, names: JSON.parse(full.body).secrets.length }, upToDate: { status: current.status, bytes: current.bytes } };
      measured(`revalidation ${g}`, revalidation[g]);
    }

    say('listing the whole inventory, every page of 1000: first (reads the catalog), again, and expiring within 60 days');
    const inventory = { first: await listInventory(call, admin), again: await listInventory(call, admin), expiringWithin60Days: await listInventory(call, admin, `&expiring_within=${60 * 86400}`) };

    const r = reads as Record<'small' | 'huge', { rks: any; vault: any }>;
    const c = changes as Record<'small' | 'huge', { associate: any; dissociate: any }>;
    const v = revalidation as Record<'small' | 'huge', { upToDate: { bytes: number; status: number } }>;
    const result = {
      command: 'make bench-scale',
      date: new Date().toISOString(),
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}`,
      vault: `${stack.vault.version}, one node, integrated (Raft) storage, plain HTTP on loopback`,
      durationSeconds: DURATION,
      secrets: SCALE,
      build: { pushMs, associateHugeMs: hugeMs, associateSharedMs: sharedMs, concurrency: BUILD_CONCURRENCY },
      reads,
      changes,
      revalidation,
      inventory,
      ratios: {
        rksP50HugeOverSmall: round(r.huge.rks.p50Ms / Math.max(1, r.small.rks.p50Ms)),
        rksRpsSmallOverHuge: round(r.small.rks.rps / r.huge.rks.rps),
        vaultCpuPerReadHugeOverSmall: round(r.huge.vault.cpuUsPerRequest.vault / r.small.vault.cpuUsPerRequest.vault),
      },
      targets: {
        readsWithin12: r.small.rks.rps / r.huge.rks.rps <= 1.2 && r.huge.vault.cpuUsPerRequest.vault / r.small.vault.cpuUsPerRequest.vault <= 1.2,
        changesUnder30ms: [c.small, c.huge].every((x) => x.associate.p50Ms <= 30 && x.dissociate.p50Ms <= 30),
        revalidationUnder1KB: v.huge.upToDate.status === 304 && v.huge.upToDate.bytes < 1024,
        inventoryUnder10s: inventory.first.ms <= 10_000 && inventory.expiringWithin60Days.ms <= 10_000,
      },
    };
    const file = writeResult('scale', result);
    process.stdout.write(`${table(result)}\nwritten to ${file}\n`);
  } finally {
    await stack.stop();
  }
}

function table(r: any): string {
  const g = (k: 'small' | 'huge') => r.reads[k];
  const row = (label: string, k: 'small' | 'huge') =>
    `| ${label} | ${g(k).rks.rps} req/s, p50 ${g(k).rks.p50Ms} ms, rks ${g(k).rks.cpuUsPerRequest.rks} µs | ${g(k).vault.rps} req/s, p50 ${g(k).vault.p50Ms} ms, Vault ${g(k).vault.cpuUsPerRequest.vault} µs | ${r.changes[k].associate.p50Ms} / ${r.changes[k].dissociate.p50Ms} ms | ${r.revalidation[k].upToDate.status}, ${r.revalidation[k].upToDate.bytes} B (full list ${r.revalidation[k].full.bytes} B) |`;
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  return [
    `Built on ${r.vault}: ${r.secrets} pushes in ${round(r.build.pushMs / 1000, 1)} s, ${r.secrets} associations in ${round(r.build.associateHugeMs / 1000, 1)} s, ${Math.min(10_000, r.secrets)} into a second group in ${round(r.build.associateSharedMs / 1000, 1)} s (${r.build.concurrency} requests at a time).`,
    '',
    '| group | node GET through rks (50 conn.): rate, p50, rks CPU/req | the same read straight from Vault: rate, p50, Vault CPU/read | associate / dissociate p50 | revalidation, up to date |',
    '| --- | --- | --- | --- | --- |',
    row(`${SMALL} secrets`, 'small'),
    row(`${r.secrets} secrets`, 'huge'),
    '',
    '| inventory, every page of 1000 | first (reads the catalog) | again | expiring within 60 days |',
    '| --- | --- | --- | --- |',
    `| ${r.inventory.first.secrets} secrets, ${r.inventory.first.pages} pages | ${r.inventory.first.ms} ms | ${r.inventory.again.ms} ms | ${r.inventory.expiringWithin60Days.ms} ms |`,
    '',
    `Targets: reads within 1.2× ${mark(r.targets.readsWithin12)} (rate ${r.ratios.rksRpsSmallOverHuge}×, Vault CPU ${r.ratios.vaultCpuPerReadHugeOverSmall}×) · association and dissociation ≤ 30 ms ${mark(r.targets.changesUnder30ms)} · ` +
      `revalidation < 1 KB ${mark(r.targets.revalidationUnder1KB)} · inventory ≤ 10 s ${mark(r.targets.inventoryUnder10s)}`,
  ].join('\n');
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
