import type { NextFunction, Request, Response } from 'express';
import { BadRequest, Forbidden, RksError } from '../errors';

/** Paths whose body is not JSON (a PEM CSR), exempt from the JSON-only rule. */
const NON_JSON_BODY_PATHS = new Set(['/ca/sign']);

/** Headers that carry one credential or identity: two of them is ambiguous, never merged. */
const CANONICAL: Record<string, string> = {
  'x-vault-token': 'X-Vault-Token',
  'x-lcdn-nodeid': 'X-LCDN-nodeId',
  authorization: 'Authorization',
};
const SINGLE_HEADERS = Object.keys(CANONICAL);

function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The input rules every endpoint shares: no compressed bodies (a gzip bomb must not reach
 * a parser) and JSON bodies only. A POST with no body at all (init) passes.
 */
export function inputGuards(req: Request, _res: Response, next: NextFunction): void {
  for (const name of SINGLE_HEADERS) {
    if ((req.headersDistinct[name]?.length ?? 0) > 1) return next(new BadRequest(`${CANONICAL[name]} given more than once`));
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity') {
    return next(new BadRequest('Content-Encoding is not supported; send the body uncompressed'));
  }
  if (hasBody(req) && !NON_JSON_BODY_PATHS.has(req.path) && !req.is('application/json')) {
    return next(new RksError(415, 'request body must be application/json'));
  }
  next();
}

/** The caller's Vault token, passed through to Vault. */
export function vaultToken(req: Request): string {
  const token = req.get('X-Vault-Token');
  if (!token) throw new Forbidden('missing X-Vault-Token');
  return token;
}
