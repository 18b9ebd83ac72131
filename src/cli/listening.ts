import net from 'node:net';
import { parseListen } from '../address';

/** Why an address cannot be listened on, in an operator's words. */
export function whyNotListening(err: NodeJS.ErrnoException): string {
  if (err.code === 'EADDRINUSE') return 'the address is already in use';
  if (err.code === 'EACCES') return 'no permission to listen there (ports below 1024 need privileges)';
  if (err.code === 'EADDRNOTAVAIL') return 'no interface of this host has that address';
  return err.message;
}

/** Listens, or exits 1 saying why (`flag address: reason`). */
export async function listenOrExit(server: net.Server, address: string, flag: string): Promise<void> {
  const { host, port } = parseListen(address);
  await new Promise<void>((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      process.stderr.write(`rks: ${flag} ${address}: ${whyNotListening(err)}\n`);
      process.exit(1);
    });
    server.listen(port, host, resolve);
  });
}

/** Checks that `address` can be listened on now (then lets it go), or exits 1 saying why. */
export async function mustListen(address: string, flag: string): Promise<void> {
  const probe = net.createServer();
  await listenOrExit(probe, address, flag);
  await new Promise((r) => probe.close(r));
}
