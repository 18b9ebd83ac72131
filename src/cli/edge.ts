import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type tls from 'node:tls';
import { Command } from 'commander';
import type { Logger } from 'pino';
import { EdgeAgent } from '../edge/agent';
import { HaproxySync } from '../edge/haproxy';
import { Tally } from '../edge/tally';
import { httpsToHttp, parseUpstream, tlsToTcp } from '../edge/upstream';
import { RksNode } from '../sdk';
import { createLogger } from '../log';
import { listenOrExit } from './listening';
import { EDGE_SETTINGS, SettingSpec, readSecret } from '../settings';
import { optionOf } from './options';

/** How long a stopping edge lets requests in flight finish. */
const DRAIN_MS = 10_000;

type EdgeOptions = { -readonly [K in keyof typeof EDGE_SETTINGS]: (typeof EDGE_SETTINGS)[K] extends SettingSpec<infer T> ? T : never } & {
  /** false with --no-listen: only the agent (nginx, HAProxy in front). */
  listen: string | false;
};

/** What an edge serves with: each part there when its options ask for it. */
interface EdgeParts {
  server?: net.Server;
  plain?: http.Server;
  agent?: EdgeAgent;
  haproxy?: HaproxySync;
}

/**
 * `rks edge`: an HTTPS server for every name its group may read, with no key on disk. Keys
 * come from rks on the first handshake that needs them and live in memory for their TTL.
 */
export function edgeCommand(): Command {
  const cmd = new Command('edge').description(
    'An edge: serve HTTPS for every name the group may read (or pass it on to an origin), or hand the keys to nginx or HAProxy in front; keys pulled from rks on demand, never on disk',
  );
  for (const s of Object.values(EDGE_SETTINGS) as SettingSpec<unknown>[]) cmd.addOption(optionOf(s));
  return cmd.option('--no-listen', 'serve no HTTPS here: nginx or HAProxy terminates TLS with the keys the agent hands out').action(async (o: EdgeOptions) => {
    const logger = createLogger(o.logLevel);
    const node = edgeNode(o, logger);
    const parts = edgeParts(o, node, logger);
    if (!parts.server && !parts.plain && !parts.agent && !parts.haproxy) usage('with --no-listen, give --agent-socket (nginx), --haproxy-socket or --http-listen: this edge would serve nothing');
    await listen(o, parts);
    logger.info({ listen: o.listen || undefined, httpListen: o.httpListen, agentSocket: o.agentSocket, rks: o.url }, 'edge listening');
    // The node's timers do not hold a program up (an SDK must let its program end); this command
    // is the program: it runs until SIGTERM or SIGINT, whatever it listens on (HAProxy alone: nothing).
    const running = setInterval(() => undefined, 2 ** 30);
    await register(node, o, logger);
    await parts.haproxy?.start().catch((err: Error) => logger.warn({ err: err.message }, 'HAProxy not in step; trying again at the next change'));
    const stop = () => {
      clearInterval(running);
      void shutDown(node, parts, logger);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

/** Refuses to start: the reason, exit code 2. */
function usage(reason: string): never {
  process.stderr.write(`rks: ${reason}\n`);
  process.exit(2);
}

/** The node: its group token, its identity, and every event it says, logged. */
function edgeNode(o: EdgeOptions, logger: Logger): RksNode {
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
    groupToken: file ? () => readSecret(undefined, file, '--group-token-file') ?? '' : groupToken,
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
  return node;
}

/** The servers the options ask for, made (not yet listening). */
function edgeParts(o: EdgeOptions, node: RksNode, logger: Logger): EdgeParts {
  const origin = new Tally((requests, reasons) => logger.warn({ origin: o.upstream, requests, reasons }, 'the origin did not answer (HTTP: 502 to the client; TCP: the connection closed)'));
  let upstream: URL | undefined;
  try {
    upstream = o.upstream ? parseUpstream(o.upstream) : undefined;
  } catch (err) {
    usage((err as Error).message);
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
  if (Boolean(o.haproxySocket) !== Boolean(o.haproxyCrtList)) usage('--haproxy-socket and --haproxy-crt-list go together');
  const haproxy = o.haproxySocket ? new HaproxySync(node, { socket: o.haproxySocket, crtList: o.haproxyCrtList! }) : undefined;
  haproxy
    ?.on('loaded', (name) => logger.info({ name }, 'certificate loaded into HAProxy'))
    .on('removed', (name) => logger.info({ name }, 'certificate withdrawn from HAProxy'))
    .on('error', (err) => logger.warn({ err: err.message }, 'HAProxy not in step'));
  return { server, plain, agent, haproxy };
}

/** Every address taken before the node registers: a busy one is a clear error, not a half-started edge. */
async function listen(o: EdgeOptions, { server, plain, agent }: EdgeParts): Promise<void> {
  if (server) await listenOrExit(server, o.listen as string, '--listen');
  if (plain) await listenOrExit(plain, o.httpListen!, '--http-listen');
  if (agent) {
    await agent.listen().catch((err: NodeJS.ErrnoException) => {
      process.stderr.write(`rks: --agent-socket ${o.agentSocket}: ${err.code === 'EADDRINUSE' ? 'another agent is serving there' : err.message}\n`);
      process.exit(1);
    });
  }
}

/**
 * Registers, waiting for rks as long as it is unreachable (an edge may start first); rks
 * refusing the node (a wrong group token, a bad node id, the callback saying no) ends the edge
 * with the reason.
 */
async function register(node: RksNode, o: EdgeOptions, logger: Logger): Promise<void> {
  for (let wait = 1000; ; wait = Math.min(wait * 2, 30_000)) {
    try {
      await node.start();
      return;
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
}

/** HAProxy emptied first, then new connections refused and those in flight let finish, within DRAIN_MS. */
async function shutDown(node: RksNode, { server, plain, agent, haproxy }: EdgeParts, logger: Logger): Promise<void> {
  logger.info('edge stopping');
  // HAProxy must not go on serving keys that no agent looks after.
  await haproxy?.stop().catch(() => undefined);
  node.stop();
  plain?.close();
  const closing = [agent?.close()];
  if (server) {
    closing.push(new Promise<void>((resolve) => server.close(() => resolve())));
    (server as Partial<http.Server>).closeIdleConnections?.();
  }
  const drained = setTimeout(() => {
    logger.warn({ drainMs: DRAIN_MS }, 'connections still open: closed');
    process.exit(0);
  }, DRAIN_MS);
  drained.unref();
  void Promise.all(closing).then(() => process.exit(0));
}
