import net from 'node:net';
import { RksNode } from '../../src/sdk';

/** rks out of reach is no reason for an edge's program to end, whether or not it listens for errors. */
describe('RksNode when rks cannot be reached', () => {
  let url: string;

  beforeAll(async () => {
    // A port nobody listens on: every connection is refused, as while rks restarts.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(probe.address() as net.AddressInfo).port}`;
    await new Promise<void>((r) => probe.close(() => r()));
  });

  it('revalidates without throwing when nobody listens for errors', async () => {
    const node = new RksNode({ url, groupToken: 'g', nodeId: 'e', revalidateMs: 0 });
    try {
      await expect(node.revalidate()).resolves.toBeUndefined();
    } finally {
      node.stop();
    }
  });

  it('tells a listener what failed', async () => {
    const node = new RksNode({ url, groupToken: 'g', nodeId: 'e', revalidateMs: 0 });
    const errors: string[] = [];
    node.on('error', (err) => errors.push(err.message));
    try {
      await node.revalidate();
      expect(errors.join(' ')).toMatch(/ECONNREFUSED|refused|connect/i);
    } finally {
      node.stop();
    }
  });
});
