import express, { NextFunction, Request, RequestHandler, Response } from 'express';
import { BadRequest, Forbidden, MethodNotAllowed, Unauthorized, UnsupportedMediaType, ValidationFailed } from '../errors';
import { PskJwt, bearer } from '../pki/psk';
import { Contract, Operation, Scheme } from './contract';
import { sourceKey } from '../address';

/**
 * An operation's handler: the request (params decoded and checked), the answer, the caller's
 * token, and the scheme of the contract the caller was admitted by ('none' where anyone may call).
 */
export type Handler = (req: Request<Record<string, string>>, res: Response, token: string, scheme: Scheme | 'none') => Promise<void> | void;
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
 * Allow for a known path, or on to the next handler for a path it does not have), then the
 * input rules every endpoint shares (one of each credential header, no compressed bodies, JSON
 * bodies where the contract says so), the PSK when required, the operation's own parameters
 * and body, the token its `security` asks for, and its handler.
 */
export function dispatch(contract: Contract, handlers: Handlers, opts: DispatchOptions): RequestHandler {
  mustMatch(contract, handlers);
  const parser = bodyParsers(opts.bodyLimit);

  return (req: Request, res: Response, next: NextFunction): void => {
    const found = contract.match(req.method, req.path);
    if (!found) return next();
    if ('allow' in found) return next(new MethodNotAllowed(found.allow));
    const { op } = found;
    res.locals.route = op.path;
    run(op, found.params, req, res).catch(next);
  };

  async function run(op: Operation, raw: Record<string, string>, req: Request, res: Response): Promise<void> {
    const body = sharedRules(op, req);
    const jwt = bearer(req.get('Authorization'));
    const verifyPsk = pskCheck(opts.psk, jwt, req);
    if (opts.requirePsk && !op.pskExempt) {
      if (!jwt) throw new Unauthorized('this rks requires a PSK JWT in Authorization: Bearer');
      await verifyPsk();
    }
    const params = decoded(raw);
    check(op.check('params', params));
    // Express 5 parses req.query afresh on each read: the checked (and type-coerced) copy replaces it.
    const query = { ...req.query };
    check(op.check('query', query));
    Object.defineProperty(req, 'query', { value: query, writable: true, configurable: true, enumerable: true });
    check(op.check('headers', req.headers));
    if (body || op.bodyRequired) {
      await new Promise<void>((resolve, reject) => parser(op)(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
      if (req.body === undefined || req.body === '') throw new BadRequest('request body is required');
      check(op.check('body', req.body));
    }
    req.params = params;

    const token = req.get('X-Vault-Token') ?? '';
    const scheme = await admit(op, { vaultToken: token !== '', pskJwt: jwt !== undefined }, verifyPsk);
    if (opts.validateResponses) checkAnswers(op, res);
    await handlers[op.id](req as unknown as Request<Record<string, string>>, res, token, scheme);
  }
}

/** Every operation of the contract has its handler, and every handler its operation. */
function mustMatch(contract: Contract, handlers: Handlers): void {
  for (const op of contract.operations) {
    if (!handlers[op.id]) throw new Error(`no handler for the contract's operation ${op.id}`);
  }
  const known = new Set(contract.operations.map((op) => op.id));
  for (const id of Object.keys(handlers)) if (!known.has(id)) throw new Error(`handler ${id} is not in the contract`);
}

/** An operation's body parser (JSON, or text for PEM), one per kind and size limit. */
function bodyParsers(defaultLimit: string): (op: Operation) => RequestHandler {
  const parsers = new Map<string, RequestHandler>();
  return (op) => {
    const limit = op.bodyLimit ?? defaultLimit;
    const key = `${op.body === 'text' ? 'text' : 'json'}:${limit}`;
    let p = parsers.get(key);
    if (!p) {
      // PEM bodies come with any Content-Type, or none (existing clients).
      p = op.body === 'text' ? express.text({ type: () => true, limit }) : express.json({ limit, inflate: false, strict: true });
      parsers.set(key, p);
    }
    return p;
  };
}

/** The input rules every endpoint shares; answers whether the request has a body. */
function sharedRules(op: Operation, req: Request): boolean {
  for (const [name, shown] of SINGLE_HEADERS) {
    if ((req.headersDistinct[name]?.length ?? 0) > 1) throw new BadRequest(`${shown} given more than once`);
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity') throw new BadRequest('Content-Encoding is not supported; send the body uncompressed');
  const body = hasBody(req);
  if (body && op.body !== 'text' && !req.is('application/json')) throw new UnsupportedMediaType('request body must be application/json');
  return body;
}

/** Verifies the request's PSK JWT, once however often asked. */
function pskCheck(psk: PskJwt | undefined, jwt: string | undefined, req: Request): () => Promise<void> {
  let verified = false;
  return async () => {
    if (verified) return;
    if (!psk) throw new Unauthorized('no PSK is configured on this rks; use an X-Vault-Token');
    // Derivation slots are few (16): a network (IPv4 /24, IPv6 /48) counts as one source.
    await psk.verify(jwt!, 'request', { source: sourceKey(req.ip ?? req.socket.remoteAddress ?? '', 'site') });
    verified = true;
  };
}

/** The path's parameters, percent-decoded. */
function decoded(raw: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    try {
      params[name] = decodeURIComponent(value);
    } catch {
      throw new BadRequest('the path is not validly percent-encoded');
    }
  }
  return params;
}

const SHOWN: Record<Scheme, string> = { vaultToken: 'an X-Vault-Token', pskJwt: 'a PSK JWT (Authorization: Bearer)' };

/**
 * The contract's `security` of an operation, enforced: the first alternative whose schemes are all
 * present admits the caller once each is checked here (a PSK JWT is verified; a Vault token is
 * Vault's to judge, with the caller's own rights). None present: 403 where only a token would
 * do (Vault's own answer), 401 otherwise, naming what would.
 */
async function admit(op: Operation, present: Record<Scheme, boolean>, verifyPsk: () => Promise<void>): Promise<Scheme | 'none'> {
  if (op.security.length === 0) return 'none';
  for (const schemes of op.security) {
    if (!schemes.every((s) => present[s])) continue;
    if (schemes.includes('pskJwt')) await verifyPsk();
    return schemes[0] ?? 'none';
  }
  const wanted = op.security.map((schemes) => schemes.map((s) => SHOWN[s]).join(' and '));
  if (op.security.every((schemes) => schemes.length === 1 && schemes[0] === 'vaultToken')) throw new Forbidden('missing X-Vault-Token');
  throw new Unauthorized(`${wanted.join(' or ')} is required`);
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
