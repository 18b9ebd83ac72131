/**
 * make bench-handshake: full TLS handshakes at the edge, in each mode, beside the same server
 * holding the certificate as a plain file, in one run:
 * - `rks edge` (Node's TLS server, keys in the process) vs Node's TLS server with a file;
 * - nginx with rks.lua (keys asked of the agent, kept in the worker) vs nginx with a file;
 * - HAProxy kept in step through its runtime API vs HAProxy with a file.
 * For each: handshakes per second and p50 for a cached name (8 clients at once, no session
 * resumption), and where a handshake can find a name cold (rks edge, nginx), the first
 * handshake of names never asked before.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { issue } from '../tests/support/pki';
import { runRks } from '../tests/support/serve';
import { startHaproxy, startNginx } from '../tests/support/servers';
import { freePort } from '../tests/support/vault';
import { ADMIN, DURATION, client, percentile, round, startStack, summary, writeResult } from './lib';

const COLD_NAMES = Number(process.env.BENCH_NAMES ?? 100);
const CLIENTS = 8;
const say = (msg: string) => process.stderr.write(`bench-handshake: ${msg}\n`);

function handshake(port: number, servername: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const s = tls.connect({ port, host: '127.0.0.1', servername, rejectUnauthorized: false }, () => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const presented = s.getPeerCertificate()?.subject;
      s.destroy();
      if (!presented) reject(new Error(`no certificate from :${port} for ${servername}`));
      else resolve(ms);
    });
    s.on('error', reject);
  });
}

/** Full handshakes for `name`, CLIENTS at a time, for `seconds`: rate and latency. */
async function load(port: number, name: string, seconds = DURATION) {
  const until = Date.now() + seconds * 1000;
  const ms: number[] = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < until) ms.push(await handshake(port, name));
    }),
  );
  ms.sort((a, b) => a - b);
  return { perSecond: Math.round(ms.length / seconds), p50Ms: round(percentile(ms, 50)), p99Ms: round(percentile(ms, 99)) };
}

function nodeFileServer(port: number, cert: string, key: string): ChildProcess {
  const code = `require('node:tls').createServer({ cert: require('node:fs').readFileSync(${JSON.stringify(cert)}), key: require('node:fs').readFileSync(${JSON.stringify(key)}), minVersion: 'TLSv1.2' }, (s) => s.end()).on('tlsClientError', () => {}).listen(${port}, '127.0.0.1')`;
  return spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
}

async function main() {
  say(`Vault, rks, and ${COLD_NAMES + 1} certificates in one group`);
  const stack = await startStack();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-bench-handshake-'));
  const stops: (() => Promise<unknown> | void)[] = [];
  try {
    const call = client(stack.url, stack.ca);
    const admin = (await call('POST', '/rks/v1/admin/login', undefined, ADMIN)).body.adminToken;
    const groupToken = (await call('POST', '/rks/v1/group/bench', admin, { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' })).body.groupToken;
    const ca = await issue({ name: 'bench sites CA', ca: true });
    const hot = 'hot.bench.example';
    const cold = Array.from({ length: COLD_NAMES }, (_, i) => `site${i}.bench.example`);
    let hotLeaf: Awaited<ReturnType<typeof issue>> | undefined;
    for (const name of [hot, ...cold]) {
      const leaf = await issue({ name, dns: [name], issuer: ca });
      hotLeaf ??= leaf;
      await call('POST', `/rks/v1/secret/${name}`, admin, { data: { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem, meta: { ttl: 3600 } } });
      await call('POST', `/rks/v1/group/bench/secrets/${name}`, admin);
    }
    // The baselines' file: the same certificate, chain and key as rks hands out.
    const file = { cert: path.join(dir, 'hot.pem'), key: path.join(dir, 'hot.key'), bundle: path.join(dir, 'hot.bundle') };
    fs.writeFileSync(file.cert, hotLeaf!.certPem + ca.certPem);
    fs.writeFileSync(file.key, hotLeaf!.keyPem, { mode: 0o600 });
    fs.writeFileSync(file.bundle, hotLeaf!.certPem + ca.certPem + hotLeaf!.keyPem, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'rks-ca.pem'), stack.ca);

    const ports = Object.fromEntries(await Promise.all(['edge', 'nodeFile', 'nginx', 'nginxHttp', 'nginxFile', 'haproxy', 'haproxyHttp', 'haproxyFile'].map(async (k) => [k, await freePort()] as const)));
    const agentSocket = path.join(dir, 'edge.sock');
    const haproxy = await startHaproxy({ agentSocket, https: ports.haproxy!, http: ports.haproxyHttp!, plain: { port: ports.haproxyFile!, ...file } });
    stops.push(() => haproxy.stop());
    const edge = runRks(
      ['edge', '--listen', `127.0.0.1:${ports.edge}`, '--agent-socket', agentSocket, '--haproxy-socket', haproxy.socket, '--haproxy-crt-list', haproxy.crtList, '--node-id', 'bench-edge', '--log-level', 'warn'],
      { RKS_URL: stack.url, RKS_CA_CERT: path.join(dir, 'rks-ca.pem'), RKS_GROUP_TOKEN: groupToken },
    );
    stops.push(() => edge.stop());
    const nginx = await startNginx({ agentSocket, https: ports.nginx!, http: ports.nginxHttp!, luaDir: path.resolve(__dirname, '../edge/nginx'), plain: { port: ports.nginxFile!, ...file } });
    stops.push(() => nginx.stop());
    const nodeFile = nodeFileServer(ports.nodeFile!, file.cert, file.key);
    stops.push(() => void nodeFile.kill());
    // HAProxy has every name once the agent loaded them; the others answer at once.
    const started = Date.now();
    for (;;) {
      try {
        await handshake(ports.haproxy!, cold[cold.length - 1]!);
        await handshake(ports.edge!, hot);
        break;
      } catch (err) {
        if (Date.now() - started > 60_000) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    say('cold names: the first handshake of each, through rks edge, then through nginx');
    const coldEdge: number[] = [];
    const coldNginx: number[] = [];
    await handshake(ports.nginx!, hot); // the worker's connection to the agent, once
    const half = Math.floor(cold.length / 2);
    for (const name of cold.slice(0, half)) coldEdge.push(await handshake(ports.edge!, name));
    for (const name of cold.slice(half)) coldNginx.push(await handshake(ports.nginx!, name));

    const pairs = [
      ['rks edge (Node)', ports.edge!, 'Node TLS server, certificate file', ports.nodeFile!],
      ['nginx + rks.lua', ports.nginx!, 'nginx, certificate file', ports.nginxFile!],
      ['HAProxy + runtime API', ports.haproxy!, 'HAProxy, certificate file', ports.haproxyFile!],
    ] as const;
    const cached: Record<string, { rks: Awaited<ReturnType<typeof load>>; file: Awaited<ReturnType<typeof load>>; ratio: number }> = {};
    for (const [label, port, fileLabel, filePort] of pairs) {
      say(`cached name, ${CLIENTS} clients, ${DURATION} s each: ${label}, then ${fileLabel}`);
      await load(port, hot, 1);
      const viaRks = await load(port, hot);
      await load(filePort, hot, 1);
      const viaFile = await load(filePort, hot);
      cached[label] = { rks: viaRks, file: viaFile, ratio: round(viaRks.perSecond / viaFile.perSecond) };
    }
    const result = {
      command: 'make bench-handshake',
      machine: `${os.cpus().length} cores`,
      clients: CLIENTS,
      durationSeconds: DURATION,
      cached,
      cold: { 'rks edge (Node)': summary(coldEdge), 'nginx + rks.lua': summary(coldNginx) },
      targets: {
        cachedAtLeast09OfFile: Object.values(cached).every((c) => c.ratio >= 0.9),
        coldP50Under10ms: summary(coldEdge).p50Ms <= 10 && summary(coldNginx).p50Ms <= 10,
      },
    };
    const out = writeResult('handshake', result);
    const rows = Object.entries(cached).map(([label, c]) => `| ${label} | ${c.rks.perSecond}/s, p50 ${c.rks.p50Ms} ms | ${c.file.perSecond}/s, p50 ${c.file.p50Ms} ms | **${c.ratio}** |`);
    process.stdout.write(
      [
        '| mode | cached name through rks | the same server, certificate file | ratio |',
        '| --- | --- | --- | --- |',
        ...rows,
        '',
        '| first handshake of a cold name | n | p50 ms | p99 ms |',
        '| --- | --- | --- | --- |',
        ...Object.entries(result.cold).map(([label, s]) => `| ${label} | ${s.n} | ${s.p50Ms} | ${s.p99Ms} |`),
        '| HAProxy + runtime API | every name is loaded before its first handshake | | |',
        '',
        `Targets: cached ≥ 0.9 × file ${result.targets.cachedAtLeast09OfFile ? 'met' : 'NOT met'} · cold p50 ≤ 10 ms ${result.targets.coldP50Under10ms ? 'met' : 'NOT met'}   (written to ${out})`,
        '',
      ].join('\n'),
    );
  } finally {
    for (const stop of stops.reverse()) await stop();
    await stack.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
