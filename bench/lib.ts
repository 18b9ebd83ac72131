import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import https from 'node:https';
import path from 'node:path';
import autocannon from 'autocannon';
import { vaultStores } from '../src/vault/adapters';
import { InitService } from '../src/init/service';
import { CatalogEntry, shardOf } from '../src/secrets/catalog';
import { kvPath } from '../src/vault/layout';
import { VaultClient } from '../src/vault/client';
import { Pki } from '../src/vault/pki';
import { startCluster } from '../tests/support/cluster';
import { Running, runRks } from '../tests/support/serve';
import { TestVault, freePort, startVault } from '../tests/support/vault';

export const DURATION = Number(process.env.BENCH_DURATION ?? 10);
export const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);

export interface Load {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export async function load(url: string, opts: Partial<autocannon.Options> & { connections: number; duration?: number }): Promise<Load> {
  const res = await autocannon({ url, duration: opts.duration ?? DURATION, ...opts });
  return {
    rps: round(res.requests.average, 0),
    p50Ms: res.latency.p50,
    p99Ms: res.latency.p99,
    errors: res.errors + res.timeouts + res.non2xx,
  };
}

/** CPU seconds a process has used so far (user + system). */
export function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs a load and reports, besides its result, the CPU each process spent per request. */
export async function withCpu(pids: Record<string, number>, fn: () => Promise<Load>): Promise<Load & { cpuUsPerRequest: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const result = await fn();
  const requests = result.rps * DURATION;
  const cpuUsPerRequest = Object.fromEntries(
    Object.entries(pids).map(([k, pid]) => [k, round(((cpuSeconds(pid) - before[k]) * 1e6) / Math.max(1, requests), 0)]),
  );
  return { ...result, cpuUsPerRequest };
}

export const ADMIN = { login: 'bench-admin', password: randomBytes(18).toString('base64url') };

export interface Stack {
  vault: BenchVault;
  rks: Running;
  url: string;
  ca: string;
  stop(): Promise<void>;
}

/** The Vault rks runs against: a dev server (in memory) unless another is given. */
export type BenchVault = Pick<TestVault, 'addr' | 'version' | 'rootToken' | 'pid' | 'stop'>;

/** A Vault (by default a dev server, in memory) and the built `rks serve`, initialised, with TLS on. */
/** A one-node Vault with integrated (Raft) storage, as production runs it: what the scale benches measure on. */
export async function raftVault(): Promise<BenchVault> {
  const cluster = await startCluster(1);
  const node = cluster.nodes[0]!;
  const version = (await (await fetch(`${node.addr}/v1/sys/seal-status`)).json()) as { version: string };
  return { addr: node.addr, version: `Vault v${version.version}`, rootToken: cluster.rootToken, pid: node.pid()!, stop: () => cluster.stop() };
}

export async function startStack(extraArgs: string[] = [], env: Record<string, string> = {}, nodeArgs: string[] = [], given?: BenchVault): Promise<Stack> {
  const vault = given ?? (await startVault());
  const client = new VaultClient({ addr: vault.addr, timeoutMs: 10_000, maxInFlight: 256 });
  await new InitService(vaultStores(client), ADMIN).init(vault.rootToken);
  const ca = (await new Pki(client).caPem())!;
  client.close();
  const port = await freePort();
  const rks = runRks(['serve', '--listen', `127.0.0.1:${port}`, '--log-level', 'info', ...extraArgs], {
    RKS_VAULT_ADDR: vault.addr,
    RKS_ADMIN_LOGIN: ADMIN.login,
    RKS_ADMIN_PASSWORD: ADMIN.password,
    ...env,
  }, nodeArgs);
  // RKS_LOG_FILE keeps rks's whole log (the bench holds only its start and its tail).
  if (process.env.RKS_LOG_FILE) {
    const file = fs.createWriteStream(process.env.RKS_LOG_FILE, { flags: 'a' });
    rks.child.stdout!.pipe(file);
    rks.child.stderr!.pipe(file);
  }
  try {
    await rks.waitFor('serving with a certificate from the rks CA');
    await rks.waitFor('rks listening');
  } catch (err) {
    // Leave nothing running behind a failed start.
    await rks.stop();
    await vault.stop();
    throw err;
  }
  return {
    vault,
    rks,
    url: `https://127.0.0.1:${port}`,
    ca,
    async stop() {
      await rks.stop();
      await vault.stop();
    },
  };
}

/** JSON over HTTPS, on a keep-alive agent (or a new connection per request). */
export function client(url: string, ca: string, keepAlive = true) {
  const agent = keepAlive ? new https.Agent({ keepAlive: true, ca, maxSockets: 64 }) : new https.Agent({ keepAlive: false, ca, maxSockets: Infinity });
  return async (method: string, p: string, token?: string, body?: unknown, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = https.request(
        `${url}${p}`,
        {
          method,
          agent,
          headers: {
            ...(token ? { 'X-Vault-Token': token } : {}),
            ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
            ...headers,
          },
        },
        (res) => {
          let raw = '';
          res.on('data', (c) => (raw += c));
          res.on('end', () => resolve({ status: res.statusCode!, body: raw ? JSON.parse(raw) : null }));
        },
      );
      req.on('error', reject);
      req.end(body !== undefined ? JSON.stringify(body) : undefined);
    });
}

/** Walks the whole inventory a page of 1000 at a time, as a script would; timed. */
export async function listInventory(call: ReturnType<typeof client>, admin: string, query = ''): Promise<{ secrets: number; pages: number; ms: number }> {
  const started = Date.now();
  let count = 0;
  let pages = 0;
  for (let next: string | undefined = ''; next !== undefined; pages++) {
    const r = await call('GET', `/rks/v1/secrets?limit=1000${query}${next ? `&after=${encodeURIComponent(next)}` : ''}`, admin);
    if (r.status !== 200) throw new Error(`list: ${r.status} ${JSON.stringify(r.body)}`);
    count += r.body.secrets.length;
    next = r.body.next;
  }
  return { secrets: count, pages, ms: Date.now() - started };
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function summary(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, meanMs: round(mean), p50Ms: round(percentile(s, 50)), p99Ms: round(percentile(s, 99)) };
}

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** Results go to bench/results (tracked) only with SAVE=1; otherwise to a temporary folder. */
export function writeResult(name: string, result: unknown): string {
  const dir = process.env.SAVE === '1' ? path.join(__dirname, 'results') : path.join(os.tmpdir(), 'rks-bench-results');
  fs.mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
  fs.writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, `${name}-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
  return path.join(dir, `${name}.json`);
}

/** The sum of a metric's series whose line matches every one of `labels` (rks's /metrics, over HTTPS). */
export async function metricSum(url: string, ca: string, name: string, ...labels: string[]): Promise<number> {
  const text = await new Promise<string>((resolve, reject) =>
    https
      .get(`${url}/metrics`, { ca }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(b));
      })
      .on('error', reject),
  );
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) && labels.every((l) => line.includes(l))) n += Number(line.split(' ').pop());
  return n;
}

/**
 * Writes straight to rks's KV mount with Vault's root token, in rks's layout: what building
 * 100,000 secrets through the API would leave (which takes hours here), in minutes. Secrets go
 * with their catalog entries (the inventory's shards written once at the end).
 */
export class Seed {
  private writes: [string, unknown][] = [];
  private shards = new Map<string, Record<string, CatalogEntry>>();

  constructor(
    private readonly vault: Pick<BenchVault, 'addr' | 'rootToken'>,
    private readonly say: (msg: string) => void,
  ) {}

  put(p: string, data: unknown): void {
    this.writes.push([p, data]);
  }

  catalogue(name: string, entry: CatalogEntry): void {
    const s = shardOf(name);
    if (!this.shards.has(s)) this.shards.set(s, {});
    this.shards.get(s)![name] = entry;
  }

  /** Everything written, 32 at a time; then the catalog and its serial. */
  async flush(): Promise<void> {
    const t0 = Date.now();
    const writes = this.writes;
    this.writes = [];
    for (const [s, secrets] of this.shards) writes.push([kvPath.catalogShard(s), { secrets }]);
    this.shards.clear();
    let k = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = k++; i < writes.length; i = k++) {
          await this.write(writes[i]![0], writes[i]![1]);
          if (i % 20_000 === 0) this.say(`written ${i} of ${writes.length}`);
        }
      }),
    );
    await this.write(kvPath.catalogSerial, { at: Date.now() });
    this.say(`${writes.length} entries written to Vault in ${round((Date.now() - t0) / 1000, 1)} s`);
  }

  /** Writes `p` again as it is: a new version (a group's serial: what its nodes were told is stale). */
  async touch(p: string): Promise<void> {
    const r = await fetch(`${this.vault.addr}/v1/rks/data/${p}`, { headers: { 'X-Vault-Token': this.vault.rootToken } });
    if (!r.ok) throw new Error(`read ${p}: ${r.status}`);
    await this.write(p, ((await r.json()) as { data: { data: unknown } }).data.data);
  }

  private async write(p: string, data: unknown): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const r = await fetch(`${this.vault.addr}/v1/rks/data/${p}`, {
        method: 'POST',
        headers: { 'X-Vault-Token': this.vault.rootToken, 'Content-Type': 'application/json' },
        body: JSON.stringify({ data }),
      });
      if (r.ok) return;
      if (attempt === 5) throw new Error(`write ${p}: ${r.status} ${await r.text()}`);
    }
  }
}
