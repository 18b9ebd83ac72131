import express, { Express, NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { AdminService, LoginLimits } from './admin/service';
import { CallbackOptions, CallbackVerifier } from './callback/verifier';
import { DEFAULTS } from './config';
import { NotFound } from './errors';
import { GroupService } from './groups/service';
import { answerJson, requestContext, requestLogger } from './http/context';
import { Contract } from './http/contract';
import { Handlers, dispatch } from './http/dispatch';
import { errorHandler } from './http/errors';
import { CaBundle, InitService } from './init/service';
import { HttpMetrics, createMetrics } from './metrics';
import { NodeService } from './nodes/service';
import { SPEC_PATH } from './paths';
import { PskJwt } from './pki/psk';
import { PkiService } from './pki/service';
import { adminRoutes } from './routes/admin';
import { caRoutes } from './routes/ca';
import { docsRouter } from './routes/docs';
import { groupRoutes } from './routes/group';
import { initRoutes } from './routes/init';
import { nodeRoutes } from './routes/node';
import { opsRoutes } from './routes/ops';
import { secretRoutes } from './routes/secret';
import { SecretService } from './secrets/service';
import { VaultClient } from './vault/client';
import { Kv } from './vault/kv';
import { Pki } from './vault/pki';
import { ServiceSession } from './vault/session';
import { Sys } from './vault/sys';
import { Tokens } from './vault/tokens';

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

export function createApp(opts: AppOptions): Express {
  const metrics = opts.metrics ?? createMetrics();
  const kv = new Kv(opts.vault);
  const sys = new Sys(opts.vault);
  const init = new InitService(sys, kv, new Pki(opts.vault), { login: opts.adminLogin, password: opts.adminPassword }, opts.caBundle);
  const credentials = { login: opts.adminLogin, password: opts.adminPassword };
  const admin = new AdminService(sys, opts.loginLimits, credentials);
  const tokens = new Tokens(opts.vault);
  const secrets = new SecretService(kv, opts.defaultSecretTtl);
  const groups = new GroupService(kv, sys, tokens);
  const session = opts.session ?? new ServiceSession(opts.vault, credentials, opts.logger);
  const verifier = new CallbackVerifier(opts.callback ?? { timeoutMs: DEFAULTS.callbackTimeout * 1000 }, opts.logger);
  const nodes = new NodeService(
    kv,
    tokens,
    session,
    verifier,
    { tokenPeriod: opts.nodeTokenPeriod ?? DEFAULTS.nodeTokenPeriod, maxNodesPerGroup: opts.maxNodesPerGroup ?? DEFAULTS.maxNodesPerGroup },
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
  app.response.json = answerJson;
  requestLogger(app.request, opts.logger);

  const handlers: Handlers = {
    ...opsRoutes(opts.vault, metrics.registry),
    ...caRoutes(pki, psk),
    ...initRoutes(init, () => {
      session.retryNow();
      opts.onInitialised?.();
    }),
    ...adminRoutes(admin),
    ...groupRoutes(groups),
    ...nodeRoutes(nodes),
    ...secretRoutes(secrets),
  };
  const context = requestContext(opts.logger, metrics);
  const api = dispatch(contract(), handlers, {
    bodyLimit: opts.bodyLimit ?? DEFAULTS.bodyLimit,
    psk,
    requirePsk: opts.requirePsk,
    validateResponses: opts.validateResponses,
  });
  // One layer for both: every request pays Express's per-layer walk once, not twice.
  app.use((req: Request, res: Response, next: NextFunction) => context(req, res, () => api(req, res, next)));
  app.use(docsRouter(SPEC_PATH));
  app.use((_req: Request, _res: Response, next: NextFunction) => next(new NotFound('no such endpoint')));
  app.use(errorHandler(opts.logger));
  return app;
}

let compiled: Contract | undefined;
/** The contract, compiled once per process. */
function contract(): Contract {
  compiled ??= Contract.load(SPEC_PATH);
  return compiled;
}
