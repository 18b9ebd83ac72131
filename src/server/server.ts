import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import type { Logger } from 'pino';
import { parseListen } from '../address';

export interface TlsFiles {
  cert: string | Buffer;
  key: string | Buffer;
  passphrase?: string;
}

export interface RunningServer {
  server: http.Server;
  url: string;
  /** Swaps the served certificate; open connections keep theirs, new handshakes get the new one. */
  setCertificate(tls: TlsFiles): void;
  /** Stops accepting, lets requests in flight finish (up to `graceMs`), then closes the rest. */
  close(graceMs: number): Promise<void>;
}

export async function startServer(
  handler: RequestListener,
  listen: string,
  tls: TlsFiles | null,
  logger: Logger,
): Promise<RunningServer> {
  const { host, port } = parseListen(listen);
  const server = tls
    ? https.createServer({ cert: tls.cert, key: tls.key, passphrase: tls.passphrase, minVersion: 'TLSv1.2' }, handler)
    : http.createServer(handler);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `${tls ? 'https' : 'http'}://${shownHost}:${addr.port}`;
  return {
    server,
    url,
    setCertificate(next: TlsFiles) {
      (server as https.Server).setSecureContext({ cert: next.cert, key: next.key, passphrase: next.passphrase });
    },
    close(graceMs: number) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn('closing connections still open after the grace period');
          server.closeAllConnections();
        }, graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
