/**
 * make bench-haproxy: HAProxy in front of `rks edge --haproxy-socket` (the built binary), for a
 * group of NAMES names (10,000 by default) with a TTL of TTL seconds (120): how long until
 * HAProxy holds them all, the requests to rks to load them, the steady rate of requests after
 * (and its busiest 10 s against its average: reloads are spread over the TTL), and both
 * processes' peak memory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { issue, newKeys } from '../tests/support/pki';
import { runRks } from '../tests/support/serve';
import { haproxyCommand, startHaproxy } from '../tests/support/servers';
import { freePort } from '../tests/support/vault';
import { factsOfChain } from '../src/secrets/facts';
import { kvPath } from '../src/vault/layout';
import { ADMIN, client, metricSum, raftVault, round, Seed, startStack, writeResult } from './lib';

const NAMES = Number(process.env.NAMES || 10_000);
const TTL = Number(process.env.TTL || 120);
/** Steady state watched for this many TTLs after the load. */
const WATCH = Number(process.env.WATCH_TTLS || 2);
const CONCURRENCY = 16;
/** How the group is built: through the API (`api`), or written straight to Vault in rks's layout (`vault`: minutes, not hours, at 100,000). */
const SEED = process.env.SEED || (NAMES > 20_000 ? 'vault' : 'api');
/** Vault's storage: `raft` (integrated, as production runs it) or `memory` (the dev server: holds every key in RAM, and slows as it grows). */
const STORAGE = process.env.STORAGE || (NAMES > 20_000 ? 'raft' : 'memory');
const say = (msg: string) => process.stderr.write(`bench-haproxy: ${msg}\n`);
const peakMb = (pid: number) => round(Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024, 0);

async function main() {
  say(`HAProxy with rks edge, ${NAMES} names, TTL ${TTL} s (group built through ${SEED === 'vault' ? 'writes to Vault' : 'the API'}, Vault's storage ${STORAGE})`);
  const stack = await startStack([], {}, [], STORAGE === 'raft' ? await raftVault() : undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-bench-haproxy-'));
  let edge: ReturnType<typeof runRks> | undefined;
  let haproxy: Awaited<ReturnType<typeof startHaproxy>> | undefined;
  try {
    const call = client(stack.url, stack.ca);
    const admin = (await call('POST', '/rks/v1/admin/login', undefined, ADMIN)).body.adminToken as string;
    const group = (await call('POST', '/rks/v1/group/edge', admin, { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' })).body.groupToken as string;
    const ca = await issue({ name: 'bench haproxy CA', ca: true });
    // A certificate of its own for each name, as a CDN's customers have (one key for all: HAProxy
    // does not look). One certificate for every name would file them all under one SNI name,
    // which HAProxy indexes at a cost that grows with their number.
    const keys = await newKeys();
    const material = async (name: string) => {
      const leaf = await issue({ name, dns: [name], issuer: ca, keys });
      return { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem };
    };
    const names = Array.from({ length: NAMES }, (_, i) => `n${i}.haproxy.bench.example`);
    const t0 = Date.now();
    if (SEED === 'vault') {
      // Written as rks would have written them: each secret, its copy in the group, its reverse index.
      const seed = new Seed(stack.vault, say);
      for (const name of names) {
        const pem = await material(name);
        const info = factsOfChain(pem.certificate);
        const data = { ...pem, meta: { ttl: TTL }, info };
        seed.put(kvPath.secret(name), data);
        seed.put(kvPath.groupCopy('edge', name), { ...data, source: 1 });
        seed.put(kvPath.secretGroups(name), { groups: ['edge'] });
        seed.catalogue(name, { version: 1, info, ttl: TTL, groups: ['edge'], groupsVersion: 1 });
      }
      await seed.flush();
      await seed.touch(kvPath.groupSerial('edge'));
    } else {
      let k = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let i = k++; i < NAMES; i = k++) {
            const pushed = await call('POST', `/rks/v1/secret/${names[i]}`, admin, { data: { ...(await material(names[i]!)), meta: { ttl: TTL } } });
            if (pushed.status !== 201) throw new Error(`push: ${pushed.status}`);
            const associated = await call('POST', `/rks/v1/group/edge/secrets/${names[i]}`, admin);
            if (associated.status !== 201) throw new Error(`associate: ${associated.status}`);
          }
        }),
      );
    }
    say(`group built in ${round((Date.now() - t0) / 1000, 1)} s`);

    haproxy = await startHaproxy({ agentSocket: path.join(dir, 'unused.sock'), https: await freePort(), http: await freePort() });
    fs.writeFileSync(path.join(dir, 'group.token'), group, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'rks-ca.pem'), stack.ca);
    const fetched0 = await fetches(stack.url, stack.ca);
    const started = Date.now();
    edge = runRks(['edge', '--no-listen', '--url', stack.url, '--ca-cert', path.join(dir, 'rks-ca.pem'), '--group-token-file', path.join(dir, 'group.token'), '--node-id', 'haproxy-1', '--haproxy-socket', haproxy.socket, '--haproxy-crt-list', haproxy.crtList, '--log-level', 'warn']);
    const held = async () => (await haproxyCommand(haproxy!.socket, 'show ssl cert')).split('\n').filter((l) => l.startsWith('rks/')).length;
    for (let n = 0; (n = await held()) < NAMES; ) {
      if (edge.child.exitCode !== null) throw new Error(`rks edge stopped: ${edge.output()}`);
      if (Date.now() - started > 3600_000) throw new Error(`only ${n} of ${NAMES} loaded in an hour`);
      // HAProxy lists every certificate it holds: asked less often as they grow.
      await new Promise((r) => setTimeout(r, Math.max(1000, NAMES / 20)));
    }
    const loadSeconds = (Date.now() - started) / 1000;
    const loadRequests = (await fetches(stack.url, stack.ca)) - fetched0;
    say(`all ${NAMES} loaded in ${round(loadSeconds, 1)} s, ${loadRequests} key fetches`);

    // The steady state: key fetches counted every 10 s for WATCH TTLs.
    const windows: number[] = [];
    let last = await fetches(stack.url, stack.ca);
    for (let t = 0; t < (WATCH * TTL) / 10; t++) {
      await new Promise((r) => setTimeout(r, 10_000));
      const now = await fetches(stack.url, stack.ca);
      windows.push(now - last);
      last = now;
    }
    const average = windows.reduce((a, b) => a + b, 0) / windows.length;
    const result = {
      command: 'make bench-haproxy',
      date: new Date().toISOString(),
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}`,
      names: NAMES,
      groupBuilt: SEED === 'vault' ? 'written to Vault in rks\'s layout' : 'through the API',
      vault: `${stack.vault.version}, ${STORAGE === 'raft' ? 'one node, integrated (Raft) storage' : 'dev server (in memory)'}`,
      ttlSeconds: TTL,
      load: { seconds: round(loadSeconds, 1), keyFetches: loadRequests },
      steady: { fetchesPerSecond: round(average / 10, 1), busiest10sOverAverage: round(Math.max(...windows) / average, 2), windows },
      peakRssMb: { agent: peakMb(edge.child.pid!), haproxy: peakMb(haproxy.child.pid!) },
    };
    const file = writeResult(`haproxy-${NAMES}-ttl${TTL}`, result);
    process.stdout.write(
      [
        '| names (TTL) | until all loaded | key fetches to load | steady fetches/s (busiest 10 s / average) | agent peak RSS | HAProxy peak RSS |',
        '| --- | --- | --- | --- | --- | --- |',
        `| ${NAMES} (${TTL} s) | ${result.load.seconds} s | ${loadRequests} | ${result.steady.fetchesPerSecond} (${result.steady.busiest10sOverAverage}×) | ${result.peakRssMb.agent} MB | ${result.peakRssMb.haproxy} MB |`,
        `written to ${file}`,
      ].join('\n') + '\n',
    );
  } finally {
    await edge?.stop();
    await haproxy?.stop();
    await stack.stop();
  }
}

/** Keys rks handed out, from its metrics. */
const fetches = (url: string, ca: string) => metricSum(url, ca, 'rks_http_requests_total', 'route="/rks/v1/secret/{fqdn}"', 'method="GET"');

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
