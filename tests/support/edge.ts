import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { RksNode } from '../../src/sdk';

/** An edge: a TLS server whose certificates all come from the node SDK. */
export async function edge(node: RksNode): Promise<{ port: number; close: () => void }> {
  // Connections stay open (as a kept-alive client's would) until the client ends them.
  const server = tls.createServer({ SNICallback: node.sniCallback }, (s) => s.write('ok\n'));
  node.protect(server);
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** A real handshake with SNI: the leaf the edge presents, or the error. */
export function handshake(port: number, servername: string, ca: string): Promise<{ fingerprint: string; subject: string } | { failed: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername, ca }, () => {
      const cert = s.getPeerCertificate();
      s.destroy();
      resolve({ fingerprint: cert.fingerprint256, subject: String(cert.subject.CN) });
    });
    s.on('error', (err) => resolve({ failed: err.message }));
  });
}

/** A handshake that keeps what a client needs to resume the session later (TLS 1.2 ticket or 1.3 PSK). */
export function sessionFrom(port: number, servername: string, ca: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername, ca });
    s.once('session', (session: Buffer) => {
      s.destroy();
      resolve(session);
    });
    s.on('error', reject);
  });
}

/** A handshake offering `session`: whether the server resumed it, or the error. */
export function resume(port: number, servername: string, ca: string, session: Buffer): Promise<{ resumed: boolean } | { failed: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername, ca, session }, () => {
      const resumed = s.isSessionReused();
      s.destroy();
      resolve({ resumed });
    });
    s.on('error', (err) => resolve({ failed: err.message }));
  });
}
