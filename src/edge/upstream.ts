import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';

/** Headers of one hop, never passed on (RFC 9110 §7.6.1), and HTTP/2's own. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'http2-settings', 'host']);
const CONNECT_TIMEOUT_MS = 5000;

type SniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;

/** What `--upstream` accepts: an HTTP origin, or a TCP one that is told the client by the PROXY protocol v2. */
export function parseUpstream(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`--upstream ${value}: not a URL (http://host:port or tcp://host:port)`);
  }
  if (!['http:', 'tcp:'].includes(url.protocol) || !url.hostname || (url.protocol === 'tcp:' && !url.port)) {
    throw new Error(`--upstream ${value}: give http://host[:port] (HTTP, with X-Forwarded-*) or tcp://host:port (PROXY protocol v2)`);
  }
  if (url.pathname !== '/' && url.pathname !== '' && url.protocol === 'http:') throw new Error(`--upstream ${value}: no path: requests keep their own`);
  return url;
}

/**
 * TLS terminated here with the keys from rks, each request passed to an HTTP origin: HTTP/2 and
 * HTTP/1.1 on the client's side, HTTP/1.1 on kept-alive connections to the origin, bodies
 * streamed both ways, the client's address in `X-Forwarded-For` and the scheme in
 * `X-Forwarded-Proto`.
 */
export function httpsToHttp(upstream: URL, sniCallback: SniCallback): http2.Http2SecureServer {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const port = Number(upstream.port) || 80;
  const server = http2.createSecureServer({ SNICallback: sniCallback, allowHTTP1: true, minVersion: 'TLSv1.2' }, (req, res) => {
    const headers: http.OutgoingHttpHeaders = {};
    const dropped = new Set(String(req.headers.connection ?? '').toLowerCase().split(',').map((h) => h.trim()));
    for (const [name, value] of Object.entries(req.headers)) {
      if (name.startsWith(':') || HOP_BY_HOP.has(name) || dropped.has(name) || value === undefined) continue;
      headers[name] = value;
    }
    const host = req.headers[':authority'] ?? req.headers.host;
    const client = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
    const before = req.headers['x-forwarded-for'];
    headers.host = host ?? upstream.host;
    headers['x-forwarded-for'] = before ? `${Array.isArray(before) ? before.join(', ') : before}, ${client}` : client;
    headers['x-forwarded-proto'] = 'https';
    if (host) headers['x-forwarded-host'] = host;
    const forwarded = http.request({ host: upstream.hostname, port, method: req.method, path: req.url, headers, agent, timeout: CONNECT_TIMEOUT_MS }, (answer) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    });
    // A deadline to connect and for the origin's first byte; a streaming answer may take longer.
    forwarded.on('response', () => forwarded.setTimeout(0));
    forwarded.on('timeout', () => forwarded.destroy(new Error('the origin did not answer in time')));
    forwarded.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' });
        res.end('the origin did not answer\n');
      } else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) forwarded.destroy();
    });
    req.pipe(forwarded);
  });
  server.on('close', () => agent.destroy());
  return server;
}

/**
 * TLS terminated here, the plain bytes passed to a TCP origin (Varnish, any server that speaks
 * the PROXY protocol), preceded by a PROXY protocol v2 header naming the client, the address it
 * reached and the server name it asked for.
 */
export function tlsToTcp(upstream: URL, sniCallback: SniCallback): tls.Server {
  const port = Number(upstream.port);
  return tls.createServer({ SNICallback: sniCallback, minVersion: 'TLSv1.2' }, (client) => {
    const origin = net.connect({ host: upstream.hostname, port });
    origin.setTimeout(CONNECT_TIMEOUT_MS, () => origin.destroy(new Error('the origin did not accept in time')));
    origin.once('connect', () => {
      origin.setTimeout(0);
      origin.write(proxyV2Header(client, client.servername || undefined));
      client.pipe(origin);
      origin.pipe(client);
    });
    origin.on('error', () => client.destroy());
    client.on('error', () => origin.destroy());
    client.on('close', () => origin.destroy());
    origin.on('close', () => client.destroy());
  });
}

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** PP2_TYPE_AUTHORITY: the server name the client asked for. */
const PP2_TYPE_AUTHORITY = 0x02;

/** The PROXY protocol v2 header (haproxy.org/download/2.6/doc/proxy-protocol.txt) for a connection. */
export function proxyV2Header(socket: Pick<net.Socket, 'remoteAddress' | 'remotePort' | 'localAddress' | 'localPort'>, authority?: string): Buffer {
  const unmapped = (a?: string) => (a ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  const src = unmapped(socket.remoteAddress);
  const dst = unmapped(socket.localAddress);
  const tlv = authority ? Buffer.concat([Buffer.from([PP2_TYPE_AUTHORITY]), u16(Buffer.byteLength(authority)), Buffer.from(authority)]) : Buffer.alloc(0);
  let family: number;
  let addresses: Buffer;
  if (net.isIPv4(src) && net.isIPv4(dst)) {
    family = 0x11; // TCP over IPv4
    addresses = Buffer.concat([ipv4(src), ipv4(dst), u16(socket.remotePort ?? 0), u16(socket.localPort ?? 0)]);
  } else if (net.isIPv6(src) && net.isIPv6(dst)) {
    family = 0x21; // TCP over IPv6
    addresses = Buffer.concat([ipv6(src), ipv6(dst), u16(socket.remotePort ?? 0), u16(socket.localPort ?? 0)]);
  } else {
    family = 0x00; // unknown: the origin uses the connection's own addresses
    addresses = Buffer.alloc(0);
  }
  const body = Buffer.concat([addresses, tlv]);
  return Buffer.concat([SIGNATURE, Buffer.from([0x21, family]), u16(body.length), body]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function ipv4(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

function ipv6(a: string): Buffer {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const part = (s: string | undefined) => (s ? s.split(':') : []);
  const h = part(head);
  const t = part(tail);
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  return out;
}
