import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { ErrorCode, RksError, ValidationFailed } from '../errors';
import { LogThrottle } from '../log';
import { FQDN_RULE, LOGIN_RULE, NAME_RULE } from '../names';
import { VaultError } from '../vault/client';
import type { ErrorAnswer } from '../sdk/wire';

const FIELD_RULES: Record<string, string> = {
  fqdn: `invalid secret name: must be ${FQDN_RULE}`,
  group: `invalid group name: use ${NAME_RULE}`,
  nodeId: `invalid node id: use ${NAME_RULE}`,
  'x-lcdn-nodeid': `invalid X-LCDN-nodeId: use ${NAME_RULE}`,
  login: `invalid login: use ${LOGIN_RULE}`,
};

/**
 * Turns a contract violation into a reason a human can act on. Names a caller chose (an
 * unknown query parameter or body field) are never repeated: they may be anything.
 */
function describeValidation(item: ValidationFailed['items'][number]): string {
  if (item.keyword === 'additionalProperties') return item.path === 'query' ? 'unknown query parameter' : `${item.path}: unknown field`;
  if (item.keyword === 'required') return `${item.path} is required`;
  const field = item.path.split('.').pop() ?? '';
  if (FIELD_RULES[field] && ['pattern', 'maxLength', 'minLength', 'type'].includes(item.keyword)) return FIELD_RULES[field];
  return `${item.path}: ${item.message}`;
}

/** Maps any error to `{"errors": [...]}` with its status. Reasons never echo input values. */
export function errorHandler(logger: Logger) {
  // Vault down, sealed or failing over is expected: one short line now and then, no stack.
  const unavailable = new LogThrottle();
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const { status, errors, headers, code } = toHttp(err);
    const log = (req as Request & { log?: Logger }).log ?? logger;
    if (status === 503) unavailable.warn(logger, errors[0], { status });
    // A group manager or CA failing is theirs to fix: one line with the reason, no stack.
    else if (status === 502 && err instanceof RksError) log.warn({ status, errors }, 'an upstream failed');
    else if (status >= 500) log.error({ err }, 'request failed');
    else log.debug({ status, errors }, 'request refused');
    if (res.headersSent) return;
    res.status(status).set(headers).json({ errors, code } satisfies ErrorAnswer);
  };
}

export interface HttpAnswer {
  status: number;
  errors: string[];
  code: ErrorCode;
  headers?: Record<string, string>;
}

export function toHttp(err: unknown): HttpAnswer {
  if (err instanceof ValidationFailed) return { status: 400, errors: err.items.map(describeValidation), code: err.code };
  if (err instanceof RksError) return { status: err.status, errors: [err.message], headers: err.headers, code: err.code };
  if (err instanceof VaultError) {
    // Vault answers 500 to a token it cannot even parse ('r.abc', 'hvb.!!!!'), and to the renewal
    // of a token whose role was deleted (a revoked node's): the caller's token is no good.
    if (err.status === 403 || (err.status === 500 && err.errors.some((e) => /error performing token check|original token role .* could not be found/i.test(e)))) {
      return { status: 403, errors: ['permission denied'], code: 'forbidden' };
    }
    // A request past Vault's limits (an array of 10,000 elements, a 1 MiB string) is refused
    // for good: not an outage to retry.
    if (err.status === 500 && err.errors.some((e) => /exceeds allowed|exceeds max|too large/i.test(e))) {
      return { status: 409, errors: ['Vault refuses a value this large (its request limits: 10,000 list entries, 1 MiB strings)'], code: 'conflict' };
    }
    const retry = { 'Retry-After': '1' };
    if (err.status === 503) return { status: 503, errors: ['vault is sealed or unavailable'], code: 'unavailable', headers: retry };
    if (err.status === 429) return { status: 503, errors: ['vault is overloaded or on standby'], code: 'unavailable', headers: retry };
    if (err.status >= 500) return { status: 503, errors: ['vault failed to answer'], code: 'unavailable', headers: retry };
    return { status: 500, errors: ['unexpected answer from vault'], code: 'internal' };
  }
  const e = err as { status?: number; type?: string; message?: string };
  // body-parser
  if (e.type === 'entity.too.large') return { status: 413, errors: ['request body too large'], code: 'body_too_large' };
  if (e.type === 'entity.parse.failed') return { status: 400, errors: ['request body is not valid JSON'], code: 'invalid_request' };
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') {
    return { status: 415, errors: ['unsupported body encoding'], code: 'unsupported_media_type' };
  }
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) return { status: e.status, errors: ['bad request'], code: 'invalid_request' };
  return { status: 500, errors: ['internal error'], code: 'internal' };
}
