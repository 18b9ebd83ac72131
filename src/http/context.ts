import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { accessLogger, safeUrl } from '../log';
import type { HttpMetrics } from '../metrics';

declare module 'http' {
  interface IncomingMessage {
    /** This request's logger (its id bound), made on first use. */
    log: Logger;
    id: string;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The headers every API answer carries (OWASP's set for REST APIs): never cached (answers hold
 * private keys), never sniffed, framed or given a referrer. The browsable docs add helmet's
 * page headers on top (routes/docs.ts).
 */
const API_HEADERS: [string, string][] = [
  ['Cache-Control', 'no-store'],
  ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
  ['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
  ['Referrer-Policy', 'no-referrer'],
];

/**
 * What every request gets, done once and cheaply: a request id (the caller's, when it is
 * well-formed), the API's security headers, and when it is answered one log line and its metrics,
 * labelled by the contract's path (never the raw path: it carries names) and never with the
 * query string.
 */
export function requestContext(logger: Logger, metrics: HttpMetrics) {
  const access = accessLogger(logger);
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    req.id = id;
    for (const [name, value] of API_HEADERS) res.setHeader(name, value);
    res.setHeader('X-Request-Id', id);
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const labels = { method: req.method, route: (res.locals.route as string | undefined) ?? 'unmatched', status: String(res.statusCode) };
      metrics.requests.inc(labels);
      metrics.duration.observe(labels, seconds);
      // 503 is something rks depends on being away (logged once per reason elsewhere), not a fault of rks.
      access[res.statusCode === 503 ? 'warn' : res.statusCode >= 500 ? 'error' : 'info'](
        {
          req: { id, method: req.method, url: safeUrl(req.originalUrl ?? req.url), remoteAddress: req.socket.remoteAddress },
          res: { statusCode: res.statusCode },
          responseTime: Math.round(seconds * 1000),
        },
        'request completed',
      );
    });
    next();
  };
}

/**
 * `req.log` on an app's request prototype: a logger with the request's id, made only when a
 * handler logs (most requests never do).
 */
export function requestLogger(proto: object, logger: Logger): void {
  const made = new WeakMap<object, Logger>();
  Object.defineProperty(proto, 'log', {
    get(this: { id: string }) {
      let log = made.get(this);
      if (!log) made.set(this, (log = logger.child({ req: { id: this.id } })));
      return log;
    },
    configurable: true,
  });
}

/**
 * `res.json` for rks's answers: JSON, its length, done. Express's own also computes an ETag
 * and checks freshness for every answer, which an API of secrets never uses.
 */
export function answerJson(this: Response, body: unknown): Response {
  const text = JSON.stringify(body);
  this.setHeader('Content-Type', 'application/json; charset=utf-8');
  this.setHeader('Content-Length', Buffer.byteLength(text));
  this.end(text);
  return this;
}
