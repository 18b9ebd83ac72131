import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { RksError } from '../errors';
import { FQDN_RULE, LOGIN_RULE } from '../names';
import { VaultError } from '../vault/client';

interface ValidatorItem {
  path?: string;
  message?: string;
}

const FIELD_RULES: Record<string, string> = {
  fqdn: `invalid secret name: must be ${FQDN_RULE}`,
  group: "invalid group name: use 1 to 64 letters, digits or '-'",
  nodeId: "invalid node id: use 1 to 64 letters, digits or '-'",
  'x-lcdn-nodeid': "invalid X-LCDN-nodeId: use 1 to 64 letters, digits or '-'",
  login: `invalid login: use ${LOGIN_RULE}`,
};

/** Turns an express-openapi-validator item into a reason a human can act on. */
function describeValidation(item: ValidatorItem): string {
  // The validator names the parameter, which may be whatever a caller put in the query string.
  if (/unknown query parameter/i.test(item.message ?? '')) return 'unknown query parameter';
  // ...and so would the name of a field that the schema does not have.
  if (/additional properties/i.test(item.message ?? '')) {
    const parent = (item.path ?? '').replace(/^[./]+/, '').replace(/\//g, '.').split('.').slice(0, -1).join('.');
    return `${parent || 'body'}: unknown field`;
  }
  const path = (item.path ?? '').replace(/^[./]+/, '').replace(/\//g, '.');
  const field = path.split('.').pop() ?? '';
  if (FIELD_RULES[field] && /pattern|maxLength|minLength|required/.test(item.message ?? '')) {
    return item.message?.includes('required') ? `${path} is required` : FIELD_RULES[field];
  }
  return path ? `${path}: ${item.message}` : String(item.message);
}

/** Maps any error to `{"errors": [...]}` with its status. Reasons never echo input values. */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const { status, errors, headers } = toHttp(err);
    const log = (req as Request & { log?: Logger }).log ?? logger;
    if (status >= 500) log.error({ err }, 'request failed');
    else log.debug({ status, errors }, 'request refused');
    if (res.headersSent) return;
    res.status(status).set(headers).json({ errors });
  };
}

export interface HttpAnswer {
  status: number;
  errors: string[];
  headers?: Record<string, string>;
}

export function toHttp(err: unknown): HttpAnswer {
  if (err instanceof RksError) return { status: err.status, errors: [err.message], headers: err.headers };
  if (err instanceof VaultError) {
    if (err.status === 403) return { status: 403, errors: ['permission denied'] };
    if (err.status === 503) return { status: 503, errors: ['vault is sealed or unavailable'] };
    if (err.status === 429) return { status: 503, errors: ['vault is overloaded or on standby'] };
    if (err.status >= 500) return { status: 503, errors: ['vault failed to answer'] };
    return { status: 500, errors: ['unexpected answer from vault'] };
  }
  const e = err as { status?: number; type?: string; errors?: ValidatorItem[]; message?: string; headers?: Record<string, string> };
  // body-parser
  if (e.type === 'entity.too.large') return { status: 413, errors: ['request body too large'] };
  if (e.type === 'entity.parse.failed') return { status: 400, errors: ['request body is not valid JSON'] };
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') {
    return { status: 415, errors: ['unsupported body encoding'] };
  }
  // express-openapi-validator
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    if (e.status === 404) return { status: 404, errors: ['no such endpoint'] };
    if (e.status === 405) {
      const allow = e.headers?.Allow;
      return { status: 405, errors: ['method not allowed'], headers: allow ? { Allow: allow } : undefined };
    }
    if (Array.isArray(e.errors) && e.errors.length > 0) {
      return { status: e.status, errors: e.errors.map(describeValidation) };
    }
    return { status: e.status, errors: [String(e.message ?? 'bad request')] };
  }
  return { status: 500, errors: ['internal error'] };
}
