/**
 * make bench-fleet: a fleet of EDGES SDK nodes (in this one process) of a group of NAMES names,
 * each holding HELD keys, revalidating every INTERVAL seconds against the built `rks serve`
 * (through a proxy that counts the bytes both ways). Measured: what the fleet costs rks when
 * nothing changes (requests and bytes per edge per interval, rks's and Vault's CPU), then one
 * key every edge holds replaced (time until every edge serves the new one, requests and bytes
 * per edge for that change).
 */
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import { RksNode } from '../src/sdk';
import { issue } from '../tests/support/pki';
import { freePort } from '../tests/support/vault';
import { ADMIN, client, cpuSeconds, metricSum, round, startStack, writeResult } from './lib';

const NAMES = Number(process.env.NAMES || 10_000);
const EDGES = Number(process.env.EDGES || 200);
const HELD = Math.min(Number(process.env.HELD || 5), NAMES);
const INTERVAL = Number(process.env.INTERVAL || 8);
const CONCURRENCY = 16;
const say = (msg: string) => process.stderr.write(`bench-fleet: ${msg}\n`);

/** A TCP proxy to rks that counts what crosses it, and the connections made. */
async function countingProxy(target: number) {
  const port = await freePort();
  const count = { up: 0, down: 0, connections: 0 };
  const server = net.createServer((client) => {
    count.connections++;
    const upstream = net.connect(target, '127.0.0.1');
    client.on('data', (d) => (count.up += d.length));
    upstream.on('data', (d) => (count.down += d.length));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { port, count, close: () => server.close() };
}

async function main() {
  say(`${EDGES} edges of a group of ${NAMES} names, each holding ${HELD} keys, revalidating every ${INTERVAL} s`);
  const stack = await startStack();
  const proxy = await countingProxy(Number(new URL(stack.url).port));
  const edges: RksNode[] = [];
  try {
    const call = client(stack.url, stack.ca);
    const admin = (await call('POST', '/rks/v1/admin/login', undefined, ADMIN)).body.adminToken as string;
    const group = (await call('POST', '/rks/v1/group/fleet', admin, { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' })).body.groupToken as string;
    const ca = await issue({ name: 'bench fleet CA', ca: true });
    const leaf = await issue({ name: '*.fleet.bench.example', dns: ['*.fleet.bench.example'], issuer: ca });
    const names = Array.from({ length: NAMES }, (_, i) => `n${i}.fleet.bench.example`);
    const t0 = Date.now();
    let k = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = k++; i < NAMES; i = k++) {
          const pushed = await call('POST', `/rks/v1/secret/${names[i]}`, admin, { data: { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem, meta: { ttl: 3600 } } });
          if (pushed.status !== 201) throw new Error(`push: ${pushed.status}`);
          const associated = await call('POST', `/rks/v1/group/fleet/secrets/${names[i]}`, admin);
          if (associated.status !== 201) throw new Error(`associate: ${associated.status}`);
        }
      }),
    );
    say(`group built in ${round((Date.now() - t0) / 1000, 1)} s`);

    // The edges, each holding the name to be replaced and a few of its own.
    const url = `https://127.0.0.1:${proxy.port}`;
    const target = names[0]!;
    for (let e = 0; e < EDGES; e++) {
      const node = new RksNode({ url, groupToken: group, nodeId: `edge-${e}`, ca: stack.ca, revalidateMs: INTERVAL * 1000 });
      node.on('error', () => undefined);
      edges.push(node);
    }
    await Promise.all(
      edges.map(async (node, e) => {
        // Spread over an interval, as a fleet's edges start at their own times.
        await new Promise((r) => setTimeout(r, ((e * INTERVAL * 1000) / EDGES) | 0));
        await node.start();
        for (let h = 0; h < HELD; h++) await node.secret(h === 0 ? target : names[(e * HELD + h) % NAMES]!);
      }),
    );
    say(`${EDGES} edges up`);

    // Nothing changes for a few intervals.
    const quiet = INTERVAL * 3;
    const before = { ...proxy.count, rks: cpuSeconds(stack.rks.child.pid!), vault: cpuSeconds(stack.vault.pid) };
    const requests0 = await requestsSeen(stack.url, stack.ca);
    await new Promise((r) => setTimeout(r, quiet * 1000));
    const requests1 = await requestsSeen(stack.url, stack.ca);
    const idle = {
      requestsPerEdgePerInterval: round((requests1 - requests0) / EDGES / 3, 2),
      bytesPerEdgePerInterval: round((proxy.count.up + proxy.count.down - before.up - before.down) / EDGES / 3, 0),
      cpuPercent: { rks: round(((cpuSeconds(stack.rks.child.pid!) - before.rks) * 100) / quiet, 1), vault: round(((cpuSeconds(stack.vault.pid) - before.vault) * 100) / quiet, 1) },
    };
    say(`idle: ${JSON.stringify(idle)}`);

    // One key every edge holds replaced.
    const next = await issue({ name: target, dns: [target], issuer: ca });
    const fingerprint = new X509Certificate(next.certPem).fingerprint256;
    const served = new Map<number, number>();
    edges.forEach((node, e) =>
      node.on('replaced', ({ names: replaced }) => {
        if (replaced.includes(target)) void node.secret(target).then((s) => s && new X509Certificate(s.certificate).fingerprint256 === fingerprint && !served.has(e) && served.set(e, Date.now()));
      }),
    );
    // One node asks as the edges do, so that the delta's answer and the key are weighed apart.
    const probe = (await call('POST', '/rks/v1/node', group, undefined, { 'X-LCDN-nodeId': 'probe' })).body.nodeToken as string;
    const listed = await raw(stack.url, stack.ca, '/rks/v1/node/secrets?changes=true', { 'X-Vault-Token': probe });
    const at = { ...proxy.count, requests: await requestsSeen(stack.url, stack.ca), rks: cpuSeconds(stack.rks.child.pid!), vault: cpuSeconds(stack.vault.pid) };
    const changedAt = Date.now();
    const put = await call('PUT', `/rks/v1/secret/${target}`, admin, { data: { certificate: next.certPem + ca.certPem, private_key: next.keyPem, meta: { ttl: 3600 } } });
    if (put.status !== 200) throw new Error(`replace: ${put.status}`);
    // rks reads a group's serial at most once a second: 304 until it has read the new one.
    let probeRequests = 1;
    let deltaAnswer = await raw(stack.url, stack.ca, '/rks/v1/node/secrets?changes=true', { 'X-Vault-Token': probe, 'If-None-Match': listed.etag });
    for (let i = 0; deltaAnswer.status === 304 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      probeRequests++;
      deltaAnswer = await raw(stack.url, stack.ca, '/rks/v1/node/secrets?changes=true', { 'X-Vault-Token': probe, 'If-None-Match': listed.etag });
    }
    if (deltaAnswer.status !== 200) throw new Error('the delta never came');
    probeRequests += 1;
    const keyAnswer = await raw(stack.url, stack.ca, `/rks/v1/secret/${target}`, { 'X-Vault-Token': probe });
    say(`delta answer ${deltaAnswer.bytes} B (${deltaAnswer.body}), key answer ${keyAnswer.bytes} B`);
    while (served.size < EDGES && Date.now() - changedAt < 60_000) await new Promise((r) => setTimeout(r, 100));
    const window = INTERVAL + 2;
    await new Promise((r) => setTimeout(r, Math.max(0, changedAt + window * 1000 - Date.now())));
    const spent = { requests: (await requestsSeen(stack.url, stack.ca)) - at.requests - probeRequests, bytes: proxy.count.up + proxy.count.down - at.up - at.down };
    const times = [...served.values()].map((t) => t - changedAt).sort((a, b) => a - b);
    const change = {
      edgesServingNewKey: served.size,
      secondsUntilAll: times.length ? round(times[times.length - 1]! / 1000, 1) : null,
      p50Seconds: times.length ? round(times[Math.floor(times.length / 2)]! / 1000, 1) : null,
      // Over one interval and a little: the change and the idle revalidations beside it.
      requestsPerEdge: round(spent.requests / EDGES, 2),
      bytesPerEdge: round(spent.bytes / EDGES, 0),
      bytesPerEdgeBeyondIdle: round(spent.bytes / EDGES - (idle.bytesPerEdgePerInterval * window) / INTERVAL, 0),
      // Headers and body as the wire carries them (TLS framing aside).
      deltaAnswerBytes: deltaAnswer.bytes,
      keyAnswerBytes: keyAnswer.bytes,
      cpuSeconds: { rks: round(cpuSeconds(stack.rks.child.pid!) - at.rks, 2), vault: round(cpuSeconds(stack.vault.pid) - at.vault, 2) },
    };
    say(`change: ${JSON.stringify(change)}`);
    const result = {
      command: 'make bench-fleet',
      date: new Date().toISOString(),
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}`,
      vault: `${stack.vault.version}, dev server (in memory)`,
      names: NAMES,
      edges: EDGES,
      heldPerEdge: HELD,
      intervalSeconds: INTERVAL,
      idle,
      change,
      targets: {
        withinBound: change.secondsUntilAll !== null && served.size === EDGES && change.secondsUntilAll <= INTERVAL + 5,
        deltaUnder1Kb: change.deltaAnswerBytes <= 1024,
      },
    };
    const file = writeResult('fleet', result);
    process.stdout.write(
      [
        `${EDGES} edges of a ${NAMES}-name group (${HELD} keys held each, revalidation every ${INTERVAL} s):`,
        '',
        '| nothing changes: per edge per interval | rks / Vault CPU, whole fleet | one key replaced: every edge serves it after | per edge for that change (one interval) | the delta\'s answer / the key\'s |',
        '| --- | --- | --- | --- | --- |',
        `| ${idle.requestsPerEdgePerInterval} requests, ${idle.bytesPerEdgePerInterval} B | ${idle.cpuPercent.rks} % / ${idle.cpuPercent.vault} % | ${change.secondsUntilAll} s (p50 ${change.p50Seconds} s), ${change.edgesServingNewKey} of ${EDGES} | ${change.requestsPerEdge} requests, ${change.bytesPerEdge} B (${change.bytesPerEdgeBeyondIdle} B beyond the idle revalidation) | ${change.deltaAnswerBytes} B / ${change.keyAnswerBytes} B |`,
        '',
        `Targets: the new key served by every edge within the interval + 5 s: ${result.targets.withinBound ? 'met' : 'MISSED'}; the delta's answer ≤ 1 KB: ${result.targets.deltaUnder1Kb ? 'met' : 'MISSED'}`,
        `written to ${file}`,
      ].join('\n') + '\n',
    );
  } finally {
    for (const node of edges) node.stop();
    proxy.close();
    await stack.stop();
  }
}

/** One GET as a node makes it: the answer's size on the wire (status line, headers, body), its ETag and body. */
function raw(url: string, ca: string, p: string, headers: Record<string, string>): Promise<{ status: number; bytes: number; etag: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${url}${p}`, { ca, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        const head = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n${res.rawHeaders.reduce((a, v, i) => a + v + (i % 2 ? '\r\n' : ': '), '')}\r\n`;
        if (res.statusCode !== 200 && res.statusCode !== 304) return reject(new Error(`${p}: ${res.statusCode} ${body}`));
        resolve({ status: res.statusCode, bytes: Buffer.byteLength(head) + Buffer.byteLength(body), etag: String(res.headers.etag ?? ''), body: body.length > 300 ? `${body.slice(0, 300)}…` : body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Requests rks answered (its metrics' own excepted), from its metrics. */
async function requestsSeen(url: string, ca: string): Promise<number> {
  return (await metricSum(url, ca, 'rks_http_requests_total')) - (await metricSum(url, ca, 'rks_http_requests_total', 'route="/metrics"'));
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
