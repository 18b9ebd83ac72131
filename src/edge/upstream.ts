import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { RksNode } from '../sdk';

/** Headers of one hop, never passed on (RFC 9110 §7.6.1), and HTTP/2's own. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'http2-settings', 'host']);
const CONNECT_TIMEOUT_MS = 5000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A connection, a tunnel or a transfer with no traffic for this long ends. */
const IDLE_TIMEOUT_MS = 120_000;
/** What a client says of itself that only this edge may say: replaced, never passed on. */
const CLIENT_CLAIMS = /^(?:x-forwarded-.*|forwarded|x-real-ip)$/;


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
 * streamed both ways. This edge is the first hop: the client's `X-Forwarded-*`, `Forwarded` and
 * `X-Real-IP` are replaced by what it saw, and a request for a host other than the one whose
 * certificate the connection got is answered 421.
 */
export function httpsToHttp(upstream: URL, node: RksNode, originFailed: (why: string) => void = () => undefined): http2.Http2SecureServer {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const port = Number(upstream.port) || 80;
  const server = http2.createSecureServer(
    { SNICallback: node.sniCallback, allowHTTP1: true, minVersion: 'TLSv1.2', handshakeTimeout: HANDSHAKE_TIMEOUT_MS, settings: { maxConcurrentStreams: 128 } },
    (req, res) => {
      const fail = (status: number, text: string) => {
        if (res.headersSent) return void res.destroy();
        res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...(status >= 500 ? { 'retry-after': '1' } : {}) });
        res.end(text);
      };
      // Origin-form only: an absolute URL would let the origin route by a host nobody checked.
      if (!req.url?.startsWith('/') && !(req.method === 'OPTIONS' && req.url === '*')) return fail(400, 'bad request target\n');
      const authority = String(req.headers[':authority'] ?? req.headers.host ?? '');
      const host = authority.replace(/:\d+$/, '').replace(/\.$/, '').toLowerCase();
      const sni = String((req.socket as tls.TLSSocket).servername ?? '').replace(/\.$/, '').toLowerCase();
      if (!host || host !== sni) return fail(421, 'this connection serves another name\n');
      const headers = forwardedHeaders(req, authority);
      const forwarded = http.request({ host: upstream.hostname, port, method: req.method, path: req.url, headers, agent, timeout: CONNECT_TIMEOUT_MS }, (answer) =>
        relay(answer, res, fail, originFailed),
      );
      // Past the first byte, a transfer that makes no progress for a while ends.
      forwarded.on('response', () => forwarded.setTimeout(IDLE_TIMEOUT_MS));
      forwarded.on('timeout', () => forwarded.destroy(new Error('the origin did not answer in time')));
      // The client gone first: the origin did nothing wrong.
      let clientGone = false;
      forwarded.on('error', (err: NodeJS.ErrnoException) => {
        if (!res.headersSent && !clientGone) originFailed(err.code ?? err.message);
        fail(502, 'the origin did not answer\n');
      });
      res.on('close', () => {
        if (res.writableFinished) return;
        clientGone = true;
        forwarded.destroy();
      });
      req.pipe(forwarded);
    },
  );
  // A connection (HTTP/2 session or HTTP/1.1 keep-alive) idle this long ends.
  server.setTimeout(IDLE_TIMEOUT_MS);
  server.on('close', () => agent.destroy());
  node.protect(server);
  return server;
}

/** What the origin is sent of the client's headers: no hop-by-hop one, none a client may not claim, and who asked for what. */
function forwardedHeaders(req: http2.Http2ServerRequest, authority: string): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {};
  const dropped = new Set(String(req.headers.connection ?? '').toLowerCase().split(',').map((h) => h.trim()));
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(':') || HOP_BY_HOP.has(name) || dropped.has(name) || CLIENT_CLAIMS.test(name) || value === undefined) continue;
    headers[name] = value;
  }
  headers.host = authority;
  headers['x-forwarded-for'] = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
  headers['x-forwarded-proto'] = 'https';
  headers['x-forwarded-host'] = authority;
  return headers;
}

/** The origin's answer passed on to the client, or a 502 when HTTP/2 cannot carry it. */
function relay(answer: http.IncomingMessage, res: http2.Http2ServerResponse, fail: (status: number, text: string) => void, originFailed: (why: string) => void): void {
  const status = answer.statusCode ?? 0;
  // HTTP/2 answers carry no 1xx final status nor any status past 599.
  if (status < 200 || status > 599) {
    answer.destroy();
    originFailed(`an unusable status (${status})`);
    return fail(502, 'the origin answered with an unusable status\n');
  }
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
  try {
    res.writeHead(status, out);
  } catch {
    answer.destroy();
    originFailed('unusable headers');
    return fail(502, 'the origin answered with unusable headers\n');
  }
  answer.pipe(res);
}

/**
 * TLS terminated here, the plain bytes passed to a TCP origin (Varnish, any server that speaks
 * the PROXY protocol), preceded by a PROXY protocol v2 header naming the client, the address it
 * reached and the server name it asked for.
 */
export function tlsToTcp(upstream: URL, node: RksNode, originFailed: (why: string) => void = () => undefined): tls.Server {
  const port = Number(upstream.port);
  const server = tls.createServer({ SNICallback: node.sniCallback, minVersion: 'TLSv1.2', handshakeTimeout: HANDSHAKE_TIMEOUT_MS }, (client) => {
    const origin = net.connect({ host: upstream.hostname, port });
    origin.setTimeout(CONNECT_TIMEOUT_MS, () => origin.destroy(new Error('the origin did not accept in time')));
    origin.once('connect', () => {
      // A tunnel idle both ways this long ends.
      origin.setTimeout(0);
      client.setTimeout(IDLE_TIMEOUT_MS, () => client.destroy());
      origin.write(proxyV2Header(client, client.servername || undefined));
      client.pipe(origin);
      origin.pipe(client);
    });
    let connected = false;
    origin.once('connect', () => (connected = true));
    origin.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) originFailed(err.code ?? err.message);
      client.destroy();
    });
    client.on('error', () => origin.destroy());
    client.on('close', () => origin.destroy());
    origin.on('close', () => client.destroy());
  });
  node.protect(server);
  return server;
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
  // A dotted IPv4 tail (::ffff:1.2.3.4, ::1.2.3.4) is its last two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const [b1, b2, b3, b4] = v4.slice(1).map(Number) as [number, number, number, number];
    a = `${a.slice(0, v4.index)}${((b1 << 8) | b2).toString(16)}:${((b3 << 8) | b4).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const part = (s: string | undefined) => (s ? s.split(':') : []);
  const h = part(head);
  const t = part(tail);
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  return out;
}
