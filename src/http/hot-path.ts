import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { HttpMetrics } from '../metrics';
import type { SecretService } from '../secrets/service';
import { safeUrl } from '../log';
import { toHttp } from './errors';

const SECRET_GET = /^\/rks\/v1\/secret\/([^/?#]+)$/;
const ROUTE = '/rks/v1/secret/{fqdn}';
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The headers helmet sets on a JSON answer, computed once. */
const HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Origin-Agent-Cluster': '?1',
  'Referrer-Policy': 'no-referrer',
  'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  'X-Content-Type-Options': 'nosniff',
  'X-DNS-Prefetch-Control': 'off',
  'X-Download-Options': 'noopen',
  'X-Frame-Options': 'SAMEORIGIN',
  'X-Permitted-Cross-Domain-Policies': 'none',
  'X-XSS-Protection': '0',
  'Content-Type': 'application/json; charset=utf-8',
};

/**
 * `GET /rks/v1/secret/{fqdn}` without the general middleware chain: edge nodes call it on
 * every handshake of a name they do not hold, so it skips what does not apply to it (body
 * parsing, the validator's linear route lookup, per-request child loggers). The contract is
 * the same: the name is checked by the same rule (parseFqdn), a query string or any other
 * shape falls through to the validated chain, errors have the common format, and the request
 * is counted and logged like any other, without its token.
 */
export function secretHotPath(secrets: SecretService, metrics: HttpMetrics, logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const match = req.method === 'GET' ? SECRET_GET.exec(req.url) : null;
    // Anything unusual (a body, an encoding) takes the general chain and its input rules.
    if (!match || req.headers['content-encoding'] || req.headers['transfer-encoding'] || req.headers['content-length']) {
      return next();
    }
    const started = process.hrtime.bigint();
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    const token = req.headers['x-vault-token'];
    // A token given twice (Node joins the values) is refused by the general chain's guards.
    if (typeof token === 'string' && token.includes(',')) return next();
    let name: string;
    try {
      name = decodeURIComponent(match[1]);
    } catch {
      return next();
    }
    const finish = (status: number, body: string, extra?: Record<string, string>) => {
      res.writeHead(status, { ...HEADERS, ...extra, 'X-Request-Id': id, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      const labels = { method: 'GET', route: ROUTE, status: String(status) };
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.requests.inc(labels);
      metrics.duration.observe(labels, seconds);
      logger[status >= 500 ? 'error' : 'info'](
        { req: { id, method: 'GET', url: safeUrl(req.url), remoteAddress: req.socket.remoteAddress }, res: { statusCode: status }, responseTime: Math.round(seconds * 1000) },
        'request completed',
      );
    };
    secrets
      .get(typeof token === 'string' ? token : '', name)
      .then(
        (secret) => finish(200, JSON.stringify(secret)),
        (err: unknown) => {
          const { status, errors, headers } = toHttp(err);
          if (status >= 500) logger.error({ err, req: { id } }, 'request failed');
          finish(status, JSON.stringify({ errors }), headers);
        },
      );
  };
}
