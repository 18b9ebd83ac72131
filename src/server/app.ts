import express, { Express, NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { NotFound } from '../errors';
import { answerJson, requestContext, requestLogger } from '../http/context';
import { Contract } from '../http/contract';
import { Handlers, dispatch } from '../http/dispatch';
import { errorHandler } from '../http/errors';
import { SPEC_PATH } from '../paths';
import { adminRoutes } from '../routes/admin';
import { caRoutes } from '../routes/ca';
import { docsRouter } from '../routes/docs';
import { groupRoutes } from '../routes/group';
import { initRoutes } from '../routes/init';
import { nodeRoutes } from '../routes/node';
import { opsRoutes } from '../routes/ops';
import { acmeRoutes } from '../routes/acme';
import { secretRoutes } from '../routes/secret';
import type { Services } from './services';

/** Largest JSON body an operation takes unless the contract gives it another (x-rks-body-limit). */
const BODY_LIMIT = '64kb';

export interface AppOptions {
  logger: Logger;
  /**
   * Proxies whose X-Forwarded-For is believed (addresses, CIDRs, or Express's names such as
   * 'loopback'); without them a client is its connection's address.
   */
  trustProxy?: string[];
  /** Every API request must also carry a valid PSK JWT. */
  requirePsk?: boolean;
  /** Check every answer against the contract too (tests do; it costs time on every request). */
  validateResponses?: boolean;
}

/** The HTTP side of rks: the contract's routes over services built elsewhere (server/services.ts). */
export function createApp(services: Services, opts: AppOptions): Express {
  if (opts.requirePsk && !services.psk) throw new Error('requirePsk needs a PSK');

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', opts.trustProxy?.length ? opts.trustProxy : false);
  app.response.json = answerJson;
  requestLogger(app.request, opts.logger);

  const handlers: Handlers = {
    ...opsRoutes(services.readiness, services.metrics.registry, services.admin),
    ...caRoutes(services.pki, services.psk),
    // After init, rks logs in at once, and (serving) switches to a certificate from its new CA.
    ...initRoutes(services.init, () => {
      services.session.retryNow();
      void services.certificate?.refresh();
    }),
    ...adminRoutes(services.admin),
    ...groupRoutes(services.groups, services.inventory),
    ...nodeRoutes(services.nodes),
    ...secretRoutes(services.secrets, services.inventory, services.managed),
    ...acmeRoutes(services.acme.issuers, services.acme.challenges, services.acme.pacing, services.inventory),
  };
  const context = requestContext(opts.logger, services.metrics);
  const api = dispatch(contract(), handlers, {
    bodyLimit: BODY_LIMIT,
    psk: services.psk,
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
