import dgram from 'node:dgram';
import net from 'node:net';

/** The answer to one query: every A question gets 127.0.0.1, every other type no record. */
function answer(msg: Buffer, queries: string[]): Buffer | null {
  if (msg.length < 12) return null;
  // The question: labels up to a zero byte, then type and class.
  let i = 12;
  const labels: string[] = [];
  while (i < msg.length && msg[i] !== 0) {
    labels.push(msg.subarray(i + 1, i + 1 + msg[i]).toString('ascii'));
    i += msg[i] + 1;
  }
  const qEnd = i + 5;
  if (qEnd > msg.length) return null;
  const type = msg.readUInt16BE(i + 1);
  queries.push(`${labels.join('.')} ${type}`);
  const header = Buffer.alloc(12);
  msg.copy(header, 0, 0, 2); // id
  header.writeUInt16BE(0x8180 | (msg.readUInt16BE(2) & 0x0100), 2); // response, recursion available
  header.writeUInt16BE(1, 4); // one question
  const record = type === 1 ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 1]) : Buffer.alloc(0);
  header.writeUInt16BE(record.length ? 1 : 0, 6);
  return Buffer.concat([header, msg.subarray(12, qEnd), record]);
}

/**
 * A DNS responder on one loopback port, UDP and TCP, that resolves every name to 127.0.0.1, so
 * that an ACME server's validation of any name reaches the test's edge on loopback. Just
 * enough of RFC 1035 for that.
 */
export async function startDns(): Promise<{ addr: string; queries: string[]; close(): void }> {
  const queries: string[] = [];
  const tcp = net.createServer((conn) => {
    let buf = Buffer.alloc(0);
    conn.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const out = answer(msg, queries);
        if (!out) return void conn.destroy();
        const len = Buffer.alloc(2);
        len.writeUInt16BE(out.length);
        conn.write(Buffer.concat([len, out]));
      }
    });
    conn.on('error', () => undefined);
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const port = (tcp.address() as net.AddressInfo).port;
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, from) => {
    const out = answer(msg, queries);
    if (out) udp.send(out, from.port, from.address);
  });
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', r));
  return {
    addr: `127.0.0.1:${port}`,
    queries,
    close: () => {
      udp.close();
      tcp.close();
    },
  };
}
