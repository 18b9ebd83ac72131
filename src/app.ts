import { randomUUID } from 'node:crypto';
import express, { Express, NextFunction, Request, Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { safeUrl } from './log';
import { AdminService, LoginLimits } from './admin/service';
import { errorHandler } from './http/errors';
import { inputGuards } from './http/guards';
import { secretHotPath } from './http/hot-path';
import { requirePsk } from './http/psk';
import { CaBundle, InitService } from './init/service';
import { PskJwt } from './pki/psk';
import { PkiService } from './pki/service';
import { caRouter } from './routes/ca';
import { Pki } from './vault/pki';
import { HttpMetrics, createMetrics } from './metrics';
import { adminRouter } from './routes/admin';
import { SPEC_PATH } from './paths';
import { docsRouter } from './routes/docs';
import { initRouter } from './routes/init';
import { opsRouter } from './routes/ops';
import { secretRouter } from './routes/secret';
import { SecretService } from './secrets/service';
import { CallbackOptions, CallbackVerifier } from './callback/verifier';
import { GroupService } from './groups/service';
import { NodeService } from './nodes/service';
import { groupRouter } from './routes/group';
import { nodeRouter } from './routes/node';
import { ServiceSession } from './vault/session';
import { Tokens } from './vault/tokens';
import { VaultClient } from './vault/client';
import { Kv } from './vault/kv';
import { Sys } from './vault/sys';

export interface AppOptions {
  vault: VaultClient;
  logger: Logger;
  metrics?: HttpMetrics;
  adminLogin: string;
  adminPassword: string;
  /** Seconds a node may keep a secret whose `meta.ttl` is unset. */
  defaultSecretTtl: number;
  /** Failed admin logins allowed per source address and per login name. */
  loginLimits?: LoginLimits;
  /** Most nodes a group may have admitted at once. */
  maxNodesPerGroup?: number;
  /**
   * Proxies whose X-Forwarded-For is believed (addresses, CIDRs, or Express's names such as
   * 'loopback'); without them a client is its connection's address.
   */
  trustProxy?: string[];
  /** Largest accepted request body. */
  bodyLimit?: string;
  /** rks's own admin session; one per process, shared with background work. */
  session?: ServiceSession;
  /** The PKI service, shared with the server-certificate manager. */
  pkiService?: PkiService;
  /** Seconds a node token lives between renewals. */
  nodeTokenPeriod?: number;
  callback?: CallbackOptions;
  /** The pre-shared key of the trust bootstrap (/ca/cert, /ca/sign). */
  psk?: string;
  /** Every API request must also carry a valid PSK JWT. */
  requirePsk?: boolean;
  /** A CA to import at init instead of generating one in Vault. */
  caBundle?: CaBundle;
  /** Called after a successful init (rks then switches to a CA-issued certificate). */
  onInitialised?: () => void;
  /** Check every answer against the contract too (tests do; it costs time on every request). */
  validateResponses?: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export const DEFAULT_MAX_NODES_PER_GROUP = 10_000;

export function createApp(opts: AppOptions): Express {
  const metrics = opts.metrics ?? createMetrics();
  const kv = new Kv(opts.vault);
  const sys = new Sys(opts.vault);
  const init = new InitService(sys, kv, new Pki(opts.vault), { login: opts.adminLogin, password: opts.adminPassword }, opts.caBundle);
  const credentials = { login: opts.adminLogin, password: opts.adminPassword };
  const admin = new AdminService(sys, opts.loginLimits, credentials);
  const tokens = new Tokens(opts.vault);
  const secrets = new SecretService(kv, opts.defaultSecretTtl);
  const groups = new GroupService(kv, sys, tokens, { nodeTokenPeriod: opts.nodeTokenPeriod ?? 600 });
  const session = opts.session ?? new ServiceSession(opts.vault, credentials, opts.logger);
  const verifier = new CallbackVerifier(opts.callback ?? { timeoutMs: 5000 }, opts.logger);
  const nodes = new NodeService(
    kv,
    tokens,
    session,
    verifier,
    { tokenPeriod: opts.nodeTokenPeriod ?? 600, maxNodesPerGroup: opts.maxNodesPerGroup ?? DEFAULT_MAX_NODES_PER_GROUP },
    metrics.nodeLimitRefusals,
    opts.logger,
  );
  const pki = opts.pkiService ?? new PkiService(new Pki(opts.vault), session);
  const psk = opts.psk ? new PskJwt(opts.psk) : undefined;
  if (opts.requirePsk && !psk) throw new Error('requirePsk needs a PSK');

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', opts.trustProxy?.length ? opts.trustProxy : false);

  // The hot path: unless every request must also prove the PSK, it skips the general chain.
  if (!opts.requirePsk) app.use(secretHotPath(secrets, metrics, opts.logger));
  app.use(
    pinoHttp({
      logger: opts.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      serializers: {
        req: (req) => ({ id: req.id, method: req.method, url: safeUrl(req.url), remoteAddress: req.remoteAddress }),
        res: (res) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
    }),
  );
  app.use(countRequests(metrics));
  app.use(helmet());
  if (opts.requirePsk) app.use(requirePsk(psk!));
  app.use(inputGuards);
  app.use(express.json({ limit: opts.bodyLimit ?? '64kb', inflate: false, strict: true }));
  app.use(docsRouter(SPEC_PATH));
  app.use(
    OpenApiValidator.middleware({
      apiSpec: SPEC_PATH,
      validateRequests: { allowUnknownQueryParameters: false },
      validateResponses: opts.validateResponses ?? false,
      validateSecurity: false,
      // /ca/sign takes a PEM body with any Content-Type, which the validator cannot describe.
      ignorePaths: /^\/(docs|openapi\.(yaml|json)|ca\/sign)/,
    }),
  );
  app.use(opsRouter(opts.vault, metrics.registry));
  app.use(caRouter(pki, psk));
  app.use(
    initRouter(init, () => {
      session.retryNow();
      opts.onInitialised?.();
    }),
  );
  app.use(adminRouter(admin));
  app.use(groupRouter(groups));
  app.use(nodeRouter(nodes));
  app.use(secretRouter(secrets));
  app.use(errorHandler(opts.logger));
  return app;
}

/** Requests and latency by route template (never the raw path: it carries names). */
function countRequests(metrics: HttpMetrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const openapi = (req as Request & { openapi?: { openApiRoute?: string } }).openapi;
      const route = openapi?.openApiRoute ?? (req.route?.path as string | undefined) ?? 'unmatched';
      const labels = { method: req.method, route, status: String(res.statusCode) };
      metrics.requests.inc(labels);
      metrics.duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };
}
