import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { RksNode, isServerName } from '../sdk';

const CERTIFICATE_PATH = /^\/v1\/certificate\/([^/?]+)$/;

/**
 * The edge agent's local API, on a Unix socket, for TLS servers that cannot hold a node token
 * themselves (nginx's Lua module, HAProxy's ACME backend):
 *
 * - `GET /v1/certificate/<server name>`: the certificate chain and then the private key, PEM, for
 *   the name of a handshake (an exact name or its wildcard), with `X-Rks-Expires-In` (seconds
 *   the caller may keep them). 404 when the node may not serve the name: unknown names are
 *   answered from the agent's memory and cost rks nothing.
 * - `GET /v1/generation`: a number that changes whenever keys were withdrawn (a dissociation,
 *   a revoked node, a rotated group token): callers that keep keys drop them all when it moves.
 *   Each certificate answer carries the generation it was given in (`X-Rks-Generation`).
 * - `GET /.well-known/acme-challenge/<token>`: ACME HTTP-01 answers for rks's orders.
 *
 * Whoever can open the socket can read the keys the node may serve: it is made with `mode`
 * (0600 by default), in a directory only the TLS server's user may enter.
 */
export class EdgeAgent {
  /** Not 1 at every start: workers of nginx that outlive this agent must not mistake their keys for current. */
  private generation = Date.now();
  private server?: http.Server;

  constructor(
    private readonly node: RksNode,
    private readonly socketPath: string,
    private readonly mode = 0o600,
  ) {
    // nginx's workers drop what they hold when the generation moves: keys withdrawn, or replaced
    // (asked again, the agent answers with the new one).
    node.on('withdrawn', () => this.generation++);
    node.on('replaced', () => this.generation++);
  }

  async listen(): Promise<void> {
    await removeStaleSocket(this.socketPath);
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 60_000;
    // No moment in which the socket exists with the process's default mode.
    const umask = process.umask(0o777 & ~this.mode);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    fs.chmodSync(this.socketPath, this.mode);
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    // Closing unlinks the socket; removing the path after would take a successor's.
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?')[0]!;
    if (path.startsWith('/.well-known/acme-challenge/')) return this.node.httpHandler(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'only GET\n');
    if (path === '/v1/generation') return answer(res, 200, `${this.generation}\n`);
    const raw = CERTIFICATE_PATH.exec(path)?.[1];
    if (raw === undefined) return answer(res, 404, 'not found\n');
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      return answer(res, 400, 'bad server name\n');
    }
    if (!isServerName(name.replace(/\.$/, ''))) return answer(res, 400, 'bad server name\n');
    const generation = this.generation;
    this.node.secretFor(name).then(
      (secret) => {
        if (!secret) return answer(res, 404, 'no certificate for this name\n');
        const keepFor = Math.floor((secret.expiresAt - Date.now()) / 1000);
        if (keepFor < 1) return answer(res, 404, 'no certificate for this name\n');
        const body = `${secret.certificate.trimEnd()}\n${secret.privateKey.trimEnd()}\n`;
        res.writeHead(200, {
          'Content-Type': 'application/x-pem-file',
          'Content-Length': Buffer.byteLength(body),
          'Cache-Control': 'no-store',
          'X-Rks-Name': secret.name,
          'X-Rks-Expires-In': String(keepFor),
          // Taken before the answer: a withdrawal after it moves the generation past it.
          'X-Rks-Generation': String(generation),
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      () => answer(res, 503, 'rks unreachable\n'),
    );
  }
}

function answer(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

/**
 * A socket left by an agent that died is removed. One that answers belongs to a running agent,
 * and any other file is not ours: both are left alone (listen then fails, saying so).
 */
async function removeStaleSocket(path: string): Promise<void> {
  let socket = false;
  try {
    socket = fs.lstatSync(path).isSocket();
  } catch {
    return; // absent
  }
  if (!socket) return;
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    // Only a refusal says nobody listens; a full backlog (EAGAIN) is a live agent.
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'ECONNREFUSED'));
  });
  if (!alive) fs.rmSync(path, { force: true });
}
