import type { NextFunction, Request, Response } from 'express';
import { Unauthorized } from '../errors';
import { PskJwt, bearer } from '../pki/psk';

/** What stays reachable without the PSK: probes, metrics, the CA itself and the docs. */
const OPEN = /^\/(healthz|metrics|ca\/cert|openapi\.(yaml|json)|docs(\/.*)?)$/;

/** --require-psk: every other request also carries a valid PSK JWT as a Bearer token. */
export function requirePsk(psk: PskJwt) {
  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    if (OPEN.test(req.path)) return next();
    const jwt = bearer(req.get('Authorization'));
    if (!jwt) return next(new Unauthorized('this rks requires a PSK JWT in Authorization: Bearer'));
    try {
      await psk.verify(jwt);
      next();
    } catch (err) {
      next(err);
    }
  };
}
