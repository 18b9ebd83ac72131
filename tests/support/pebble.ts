import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { startDns } from './dns';
import { issue } from './pki';
import { freePort } from './vault';

const ROOT = path.resolve(__dirname, '..', '..');

export interface TestPebble {
  /** The ACME directory URL. */
  directory: string;
  /** PEM of the CA that signs Pebble's own HTTPS certificate (trust it for the directory). */
  tlsCa: string;
  /** PEM of the root that Pebble's certificates chain to (Pebble makes a new one at each start). */
  issuingRoot(): Promise<string>;
  /** The names Pebble looked up through the test's DNS responder. */
  dnsQueries: string[];
  /** The tail of Pebble's own log, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

export function pebbleBinary(): string {
  if (process.env.RKS_PEBBLE_BIN) return process.env.RKS_PEBBLE_BIN;
  return execFileSync(path.join(ROOT, 'scripts', 'pebble-bin.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

/**
 * Pebble on loopback ports, validating HTTP-01 for real: it resolves every name through a test
 * DNS responder (127.0.0.1) and fetches the challenge from `httpPort`, where the test's edge
 * listens. Certificates live `validitySeconds`.
 */
/**
 * `alwaysValid`: Pebble skips validation (for tests about something else than HTTP-01, which a
 * loaded machine can make miss a DNS answer from the stub resolver).
 */
export async function startPebble(opts: { httpPort: number; validitySeconds?: number; alwaysValid?: boolean }): Promise<TestPebble> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-pebble-'));
  const ca = await issue({ name: 'pebble test TLS CA', ca: true });
  const leaf = await issue({ name: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], issuer: ca });
  fs.writeFileSync(path.join(dir, 'cert.pem'), leaf.certPem);
  fs.writeFileSync(path.join(dir, 'key.pem'), leaf.keyPem);
  const [port, mgmt, tlsPort] = [await freePort(), await freePort(), await freePort()];
  fs.writeFileSync(
    path.join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${mgmt}`,
        certificate: path.join(dir, 'cert.pem'),
        privateKey: path.join(dir, 'key.pem'),
        httpPort: opts.httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        retryAfter: { authz: 1, order: 1 },
        keyAlgorithm: 'ecdsa',
        profiles: { default: { description: 'test', validityPeriod: opts.validitySeconds ?? 3600 } },
      },
    }),
  );
  const dns = await startDns();
  let output = '';
  const child: ChildProcess = spawn(pebbleBinary(), ['-config', path.join(dir, 'pebble.json'), '-dnsserver', dns.addr], {
    // No sleeps before validation, and no nonce rejection: the tests stay fast and deterministic.
    // Every order validates afresh (no reuse of earlier authorisations), so each renewal asks the edge again.
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0', ...(opts.alwaysValid ? { PEBBLE_VA_ALWAYS_VALID: '1' } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const directory = `https://127.0.0.1:${port}/dir`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pebble exited:\n${output}`);
    if (output.includes('Listening on')) break;
    if (Date.now() > deadline) throw new Error(`pebble did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    directory,
    tlsCa: ca.certPem,
    dnsQueries: dns.queries,
    log: () => output,
    issuingRoot: () =>
      new Promise<string>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${mgmt}/roots/0`, { ca: ca.certPem }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`pebble roots: ${res.statusCode}`))));
          })
          .on('error', reject);
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        dns.close();
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
