import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import { Command, InvalidArgumentError } from 'commander';
import { EdgeAgent } from '../edge/agent';
import { HaproxySync } from '../edge/haproxy';
import { Tally } from '../edge/tally';
import { httpsToHttp, parseUpstream, tlsToTcp } from '../edge/upstream';
import { RksNode } from '../client';
import { LogLevel, createLogger } from '../log';
import { listenOrExit } from './listening';
import { readSecret } from '../config';
import { caCertOption, urlOption } from './connection';
import { opt } from './options';
import { positiveInt } from '../settings';
import { NAME_PATTERN, NAME_RULE } from '../names';

/** How long a stopping edge lets requests in flight finish. */
const DRAIN_MS = 10_000;

interface EdgeOptions {
  /** false with --no-listen: only the agent (nginx, HAProxy in front). */
  listen: string | false;
  agentSocket?: string;
  agentSocketMode: number;
  haproxySocket?: string;
  upstream?: string;
  haproxyCrtList?: string;
  httpListen?: string;
  url: string;
  caCert?: string;
  groupToken?: string;
  groupTokenFile?: string;
  nodeId: string;
  logLevel: LogLevel;
  revalidateInterval: number;
}

/**
 * `rks edge`: an HTTPS server for every name its group may read, with no key on disk. Keys
 * come from rks on the first handshake that needs them and live in memory for their TTL.
 */
export function edgeCommand(): Command {
  return new Command('edge')
    .description('An edge: serve HTTPS for every name the group may read (or pass it on to an origin), or hand the keys to nginx or HAProxy in front; keys pulled from rks on demand, never on disk')
    .addOption(opt('--listen <host:port>', 'address to serve HTTPS on', 'RKS_EDGE_LISTEN').default('0.0.0.0:8443'))
    .addOption(
      opt(
        '--upstream <url>',
        'pass what --listen receives to an origin: http://host:port (HTTP/1.1, with X-Forwarded-For and -Proto) or tcp://host:port (the bytes, after a PROXY protocol v2 header)',
        'RKS_EDGE_UPSTREAM',
      ),
    )
    .option('--no-listen', 'serve no HTTPS here: nginx or HAProxy terminates TLS with the keys the agent hands out')
    .addOption(
      opt(
        '--agent-socket <path>',
        'also answer local TLS servers on this Unix socket: nginx\'s Lua module asks it for each handshake\'s certificate, HAProxy for ACME challenges',
        'RKS_EDGE_AGENT_SOCKET',
      ),
    )
    .addOption(
      opt('--agent-socket-mode <octal>', 'file mode of the agent socket: whoever may open it may read the keys', 'RKS_EDGE_AGENT_SOCKET_MODE')
        .argParser(octalMode)
        .default(0o600, '600'),
    )
    .addOption(
      opt(
        '--http-listen <host:port>',
        'also serve plain HTTP here, answering ACME HTTP-01 challenges for rks (CAs validate on port 80: 0.0.0.0:80)',
        'RKS_EDGE_HTTP_LISTEN',
      ),
    )
    .addOption(opt('--haproxy-socket <path>', 'keep this HAProxy\'s certificates in step with what the node may serve, through its runtime API (stats socket, level admin)', 'RKS_EDGE_HAPROXY_SOCKET'))
    .addOption(
      opt('--haproxy-crt-list <path>', 'the crt-list of HAProxy\'s `bind … ssl crt-list <path> strict-sni`, as written there (with --haproxy-socket)', 'RKS_EDGE_HAPROXY_CRT_LIST'),
    )
    .addOption(urlOption())
    .addOption(caCertOption())
    .addOption(opt('--group-token <token>', 'the group token (prefer --group-token-file)', 'RKS_GROUP_TOKEN'))
    .addOption(opt('--group-token-file <file>', 'file holding the group token', 'RKS_GROUP_TOKEN_FILE'))
    .addOption(opt('--node-id <id>', `this node's id (X-LCDN-nodeId: ${NAME_RULE})`, 'RKS_NODE_ID').argParser(nodeId).makeOptionMandatory())
    .addOption(
      opt('--revalidate-interval <seconds>', 'how often to ask rks what this node may still serve (revocations reach the edge within it)', 'RKS_EDGE_REVALIDATE_INTERVAL')
        .argParser(positiveInt('--revalidate-interval', 3600))
        .default(8),
    )
    .addOption(opt('--log-level <level>', 'log level', 'RKS_LOG_LEVEL').default('info'))
    .action(async (o: EdgeOptions) => {
      const logger = createLogger(o.logLevel);
      const groupToken = readSecret(o.groupToken, o.groupTokenFile, '--group-token-file');
      if (!groupToken) {
        logger.fatal('no group token: set --group-token-file or RKS_GROUP_TOKEN');
        process.exit(2);
      }
      // The file is read again at every registration, so `rks group token rotate edge --save edge.token`
      // reaches a running edge: its node token dies with the old group token, and it registers anew.
      const file = o.groupTokenFile;
      const node = new RksNode({
        url: o.url,
        groupToken: file ? () => readSecret(undefined, file, '--group-token-file') ?? '' : groupToken!,
        nodeId: o.nodeId,
        ca: o.caCert ? fs.readFileSync(o.caCert) : undefined,
        revalidateMs: o.revalidateInterval * 1000,
        // Keys only loaded into HAProxy are handed on, not kept: the agent stays small at any size.
        handOff: Boolean(o.haproxySocket) && !o.listen && !o.agentSocket,
      });
      node.on('registered', ({ ttl }) => logger.info({ ttl }, 'registered with rks'));
      node.on('renewed', ({ ttl }) => logger.debug({ ttl }, 'node token renewed'));
      node.on('fetched', (e) => logger.info(e, 'key fetched'));
      node.on('expired', (e) => logger.info(e, 'key dropped at the end of its TTL'));
      node.on('refused', (e) => logger.info(e, 'no key for this name'));
      node.on('revoked', (e) => logger.warn(e, 'keys dropped: rks no longer lets this node have them'));
      node.on('replaced', (e) => logger.info(e, 'keys replaced in rks: the new ones are served'));
      node.on('error', (err) => logger.warn({ err: err.message }, 'rks request failed'));
      const unserved = new Tally((handshakes, examples) =>
        logger.warn({ handshakes, examples }, 'handshakes refused: names this node may not serve (not associated with its group, or strangers trying names)'),
      );
      node.on('unserved', ({ name }) => unserved.note(name));
      const origin = new Tally((requests, reasons) => logger.warn({ origin: o.upstream, requests, reasons }, 'the origin did not answer (HTTP: 502 to the client; TCP: the connection closed)'));
      let upstream: URL | undefined;
      try {
        upstream = o.upstream ? parseUpstream(o.upstream) : undefined;
      } catch (err) {
        process.stderr.write(`rks: ${(err as Error).message}\n`);
        process.exit(2);
      }
      const server: net.Server | undefined = !o.listen
        ? undefined
        : upstream?.protocol === 'http:'
          ? httpsToHttp(upstream, node, (why) => origin.note(why))
          : upstream?.protocol === 'tcp:'
            ? tlsToTcp(upstream, node, (why) => origin.note(why))
            : https.createServer({ SNICallback: node.sniCallback, minVersion: 'TLSv1.2' }, (req, res) => {
                const host = (req.socket as { servername?: string }).servername ?? 'unknown';
                res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
                res.end(`${host} served by rks edge node ${o.nodeId}\n`);
              });
      if (server && !upstream) node.protect(server as tls.Server);
      server?.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'handshake failed'));
      const plain = o.httpListen ? http.createServer((req, res) => node.httpHandler(req, res)) : undefined;
      const agent = o.agentSocket ? new EdgeAgent(node, o.agentSocket, o.agentSocketMode) : undefined;
      if (Boolean(o.haproxySocket) !== Boolean(o.haproxyCrtList)) {
        process.stderr.write('rks: --haproxy-socket and --haproxy-crt-list go together\n');
        process.exit(2);
      }
      const haproxy = o.haproxySocket ? new HaproxySync(node, { socket: o.haproxySocket, crtList: o.haproxyCrtList! }) : undefined;
      haproxy
        ?.on('loaded', (name) => logger.info({ name }, 'certificate loaded into HAProxy'))
        .on('removed', (name) => logger.info({ name }, 'certificate withdrawn from HAProxy'))
        .on('error', (err) => logger.warn({ err: err.message }, 'HAProxy not in step'));
      if (!server && !plain && !agent && !haproxy) {
        process.stderr.write('rks: with --no-listen, give --agent-socket (nginx), --haproxy-socket or --http-listen: this edge would serve nothing\n');
        process.exit(2);
      }
      // Every address is taken before the node registers: a busy one is a clear error, not a half-started edge.
      if (server) await listenOrExit(server, o.listen as string, '--listen');
      if (plain) await listenOrExit(plain, o.httpListen!, '--http-listen');
      if (agent) {
        await agent.listen().catch((err: NodeJS.ErrnoException) => {
          process.stderr.write(`rks: --agent-socket ${o.agentSocket}: ${err.code === 'EADDRINUSE' ? 'another agent is serving there' : err.message}\n`);
          process.exit(1);
        });
      }
      logger.info({ listen: o.listen || undefined, httpListen: o.httpListen, agentSocket: o.agentSocket, rks: o.url }, 'edge listening');
      // The node's timers do not hold a program up (an SDK must let its program end); this command
      // is the program: it runs until SIGTERM or SIGINT, whatever it listens on (HAProxy alone: nothing).
      const running = setInterval(() => undefined, 2 ** 30);
      // rks refusing the node (a wrong group token, a bad node id, the callback saying no) ends
      // the edge with the reason; rks unreachable is waited for, as an edge may start first.
      for (let wait = 1000; ; wait = Math.min(wait * 2, 30_000)) {
        try {
          await node.start();
          break;
        } catch (err) {
          const status = (err as { status?: number }).status;
          if (status === 400 || status === 403) {
            const which = status === 403 ? ` (the group token of ${o.groupTokenFile ? `--group-token-file ${o.groupTokenFile}` : '--group-token / RKS_GROUP_TOKEN'} was refused)` : '';
            process.stderr.write(`rks: this edge cannot register: ${(err as Error).message}${which}\n`);
            process.exit(1);
          }
          logger.warn({ err: (err as Error).message, retryInMs: wait }, 'cannot register with rks yet; will retry');
          await new Promise((r) => setTimeout(r, wait));
        }
      }
      await haproxy?.start().catch((err: Error) => logger.warn({ err: err.message }, 'HAProxy not in step; trying again at the next change'));

      const stop = async () => {
        logger.info('edge stopping');
        clearInterval(running);
        // HAProxy must not go on serving keys that no agent looks after.
        await haproxy?.stop().catch(() => undefined);
        node.stop();
        plain?.close();
        const closing = [agent?.close()];
        if (server) {
          // New connections are refused; those in flight finish, within DRAIN_MS.
          closing.push(new Promise<void>((resolve) => server.close(() => resolve())));
          (server as Partial<http.Server>).closeIdleConnections?.();
        }
        const drained = setTimeout(() => {
          logger.warn({ drainMs: DRAIN_MS }, 'connections still open: closed');
          process.exit(0);
        }, DRAIN_MS);
        drained.unref();
        void Promise.all(closing).then(() => process.exit(0));
      };
      process.on('SIGTERM', () => void stop());
      process.on('SIGINT', () => void stop());
    });
}

function nodeId(value: string): string {
  if (!NAME_PATTERN.test(value)) throw new InvalidArgumentError(`'${value}' is no node id: use ${NAME_RULE}`);
  return value;
}

function octalMode(value: string): number {
  if (!/^0?[0-7]{3}$/.test(value)) throw new InvalidArgumentError('--agent-socket-mode: an octal file mode, such as 600 or 660');
  return parseInt(value, 8);
}

