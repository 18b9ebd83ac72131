import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'rks');
/** Node flags of the binary's `#!` line: what `rks` runs with when started as users start it. */
const SHEBANG = fs.readFileSync(BIN, 'utf8').split('\n')[0].split(/\s+/);
const BIN_NODE_FLAGS = SHEBANG.filter((a) => a.startsWith('--'));
/** The environment the `#!` line sets (env -S NAME=value). */
const BIN_ENV = Object.fromEntries(SHEBANG.filter((a) => /^[A-Z_]+=/.test(a)).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));

export interface Running {
  child: ChildProcess;
  output: () => string;
  /** What it wrote to standard output alone. */
  stdout: () => string;
  exited: Promise<number | null>;
  /** Resolves once the output contains `text`. */
  waitFor(text: string, ms?: number): Promise<void>;
  stop(): Promise<number | null>;
}

/** Runs the built `rks` binary (make test builds it first) with only the given environment. */
export function runRks(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Running {
  let out = '';
  const child = spawn(process.execPath, [...BIN_NODE_FLAGS, ...nodeArgs, BIN, ...args], {
    env: { PATH: process.env.PATH!, HOME: os.tmpdir(), ...BIN_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Keep the start and a bounded tail: a server under load writes a lot.
  const keep = (d: Buffer) => {
    out += d;
    if (out.length > 1_000_000) out = out.slice(0, 100_000) + out.slice(-400_000);
  };
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => {
    if (stdout.length < 1_000_000) stdout += d;
  });
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    output: () => out,
    stdout: () => stdout,
    exited,
    async waitFor(text: string, ms = 15_000) {
      const deadline = Date.now() + ms;
      while (!out.includes(text)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`'${text}' did not appear; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The certificate a TLS server presents (chain verification off: we only look). */
export function peerCertificate(port: number, servername = 'localhost'): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername, rejectUnauthorized: false }, () => {
      const cert = s.getPeerCertificate(true);
      s.end();
      resolve(cert);
    });
    s.on('error', reject);
  });
}

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function httpsRequest(
  url: string,
  opts: { method?: string; ca?: string | Buffer; insecure?: boolean; headers?: Record<string, string>; body?: string; agent?: https.Agent } = {},
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: opts.method ?? 'GET', ca: opts.ca, rejectUnauthorized: !opts.insecure, headers: opts.headers, agent: opts.agent },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
