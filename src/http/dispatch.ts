import express, { NextFunction, Request, RequestHandler, Response } from 'express';
import { BadRequest, Forbidden, MethodNotAllowed, Unauthorized, UnsupportedMediaType, ValidationFailed } from '../errors';
import { PskJwt, bearer } from '../pki/psk';
import { Contract, Operation } from './contract';
import { sourceKey } from '../address';

/** An operation's handler: the request (params decoded and checked), the answer, the caller's token. */
export type Handler = (req: Request<Record<string, string>>, res: Response, token: string) => Promise<void> | void;
export type Handlers = Record<string, Handler>;

export interface DispatchOptions {
  /** Largest JSON body where the contract sets no `x-rks-body-limit`. */
  bodyLimit: string;
  psk?: PskJwt;
  /** Every operation not marked `x-rks-psk-exempt` also needs a PSK JWT. */
  requirePsk?: boolean;
  /** Check every JSON answer against the contract (tests do; it costs time). */
  validateResponses?: boolean;
}

/** Headers that carry one credential or identity: two of them is ambiguous, never merged. */
const SINGLE_HEADERS: [string, string][] = [
  ['x-vault-token', 'X-Vault-Token'],
  ['x-lcdn-nodeid', 'X-LCDN-nodeId'],
  ['authorization', 'Authorization'],
];

function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The one pipeline every API request takes: the contract finds the operation (405 with
 * Allow for a known path, or on to the next handler for a path it does not have), then the input rules every endpoint shares (one of each credential header, no
 * compressed bodies, JSON bodies where the contract says so), the PSK when required, the
 * operation's own parameters and body, the token its `security` asks for, and its handler.
 */
export function dispatch(contract: Contract, handlers: Handlers, opts: DispatchOptions): RequestHandler {
  for (const op of contract.operations) {
    if (!handlers[op.id]) throw new Error(`no handler for the contract's operation ${op.id}`);
  }
  const known = new Set(contract.operations.map((op) => op.id));
  for (const id of Object.keys(handlers)) if (!known.has(id)) throw new Error(`handler ${id} is not in the contract`);

  const parsers = new Map<string, RequestHandler>();
  const parser = (op: Operation): RequestHandler => {
    const limit = op.bodyLimit ?? opts.bodyLimit;
    const key = `${op.body === 'text' ? 'text' : 'json'}:${limit}`;
    let p = parsers.get(key);
    if (!p) {
      // PEM bodies come with any Content-Type, or none (existing clients).
      p = op.body === 'text' ? express.text({ type: () => true, limit }) : express.json({ limit, inflate: false, strict: true });
      parsers.set(key, p);
    }
    return p;
  };

  return (req: Request, res: Response, next: NextFunction): void => {
    const found = contract.match(req.method, req.path);
    if (!found) return next();
    if ('allow' in found) return next(new MethodNotAllowed(found.allow));
    const { op } = found;
    res.locals.route = op.path;
    run(op, found.params, req, res).catch(next);
  };

  async function run(op: Operation, raw: Record<string, string>, req: Request, res: Response): Promise<void> {
    for (const [name, shown] of SINGLE_HEADERS) {
      if ((req.headersDistinct[name]?.length ?? 0) > 1) throw new BadRequest(`${shown} given more than once`);
    }
    const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity') throw new BadRequest('Content-Encoding is not supported; send the body uncompressed');
    const body = hasBody(req);
    if (body && op.body !== 'text' && !req.is('application/json')) throw new UnsupportedMediaType('request body must be application/json');
    if (opts.requirePsk && !op.pskExempt) {
      const jwt = bearer(req.get('Authorization'));
      if (!jwt) throw new Unauthorized('this rks requires a PSK JWT in Authorization: Bearer');
      await opts.psk!.verify(jwt, { source: sourceKey(req.ip ?? req.socket.remoteAddress ?? '') });
    }

    const params: Record<string, string> = {};
    for (const [name, value] of Object.entries(raw)) {
      try {
        params[name] = decodeURIComponent(value);
      } catch {
        throw new BadRequest('the path is not validly percent-encoded');
      }
    }
    check(op.check('params', params));
    // Express 5 parses req.query afresh on each read: the checked (and type-coerced) copy replaces it.
    const query = { ...req.query };
    check(op.check('query', query));
    Object.defineProperty(req, 'query', { value: query, writable: true, configurable: true, enumerable: true });
    check(op.check('headers', req.headers));
    if (body || op.bodyRequired) {
      await new Promise<void>((resolve, reject) => parser(op)(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
      if (op.body === 'json') {
        if (req.body === undefined) throw new BadRequest('request body is required');
        check(op.check('body', req.body));
      }
    }
    req.params = params;

    const token = req.get('X-Vault-Token') ?? '';
    if (op.auth === 'vaultToken' && !token) throw new Forbidden('missing X-Vault-Token');
    if (opts.validateResponses) checkAnswers(op, res);
    await handlers[op.id](req as unknown as Request<Record<string, string>>, res, token);
  }
}

function check(items: ReturnType<Operation['check']>): void {
  if (items.length) throw new ValidationFailed(items);
}

/** Answers that break the contract become a 500 that says so: a test cannot miss them. */
function checkAnswers(op: Operation, res: Response): void {
  const json = res.json.bind(res);
  res.json = (value: unknown) => {
    const wrong = op.checkAnswer(res.statusCode, value);
    if (wrong.length === 0) return json(value);
    res.status(500);
    return json({ errors: [`answer ${op.id} does not match the contract: ${wrong.map((w) => `${w.path} ${w.message}`).join('; ')}`] });
  };
}
