/**
 * The stable codes of error answers (`{"errors": [...], "code": "..."}`), for clients to branch
 * on instead of reasons, which are for humans and may change. The contract lists the same.
 */
export const ERROR_CODES = [
  'invalid_request',
  'unauthorized',
  'forbidden',
  'callback_refused',
  'node_revoked',
  'not_found',
  'method_not_allowed',
  'conflict',
  'already_exists',
  'already_initialised',
  'classic_deployment',
  'predating_objects',
  'already_associated',
  'still_associated',
  'node_limit_reached',
  'layout_outdated',
  'layout_newer',
  'certificate_expired',
  'body_too_large',
  'unsupported_media_type',
  'login_locked',
  'concurrent_change',
  'too_many_requests',
  'internal',
  'upstream_failed',
  'unavailable',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Typed errors that carry their own HTTP status and code, so handlers never guess.
 * Messages are shown to callers: they must never contain a token, a password or a key.
 */
export class RksError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Headers the answer carries (Retry-After, Allow). */
    readonly headers: Record<string, string> = {},
    readonly code: ErrorCode = 'internal',
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequest extends RksError {
  constructor(message: string) {
    super(400, message, {}, 'invalid_request');
  }
}

export class Unauthorized extends RksError {
  constructor(message = 'authentication required') {
    super(401, message, {}, 'unauthorized');
  }
}

export class Forbidden extends RksError {
  constructor(message = 'permission denied', code: ErrorCode = 'forbidden') {
    super(403, message, {}, code);
  }
}

export class NotFound extends RksError {
  constructor(message: string) {
    super(404, message, {}, 'not_found');
  }
}

export class MethodNotAllowed extends RksError {
  constructor(allow: string) {
    super(405, 'method not allowed', { Allow: allow }, 'method_not_allowed');
  }
}

export class UnsupportedMediaType extends RksError {
  constructor(message: string) {
    super(415, message, {}, 'unsupported_media_type');
  }
}

/** A request that does not match the contract; `items` say where and why (see http/errors). */
export class ValidationFailed extends RksError {
  constructor(readonly items: { path: string; keyword: string; message: string }[]) {
    super(400, 'the request does not match the contract', {}, 'invalid_request');
  }
}

export class Conflict extends RksError {
  constructor(message: string, code: ErrorCode = 'conflict') {
    super(409, message, {}, code);
  }
}

/** A name already taken (`what`: "secret 'x'", "group 'g'"). */
export const alreadyExists = (what: string) => new Conflict(`${what} already exists`, 'already_exists');

/** What was asked for existed and is no longer usable (an expired certificate). */
export class Gone extends RksError {
  constructor(message: string, code: ErrorCode) {
    super(410, message, {}, code);
  }
}

export class Locked extends RksError {
  constructor(message: string, code: ErrorCode = 'concurrent_change') {
    super(423, message, {}, code);
  }
}

export class TooManyRequests extends RksError {
  constructor(message: string, retryAfterSeconds: number) {
    super(429, message, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) }, 'too_many_requests');
  }
}

export class BadGateway extends RksError {
  constructor(message: string) {
    super(502, message, {}, 'upstream_failed');
  }
}

/** Something rks depends on (Vault, its own login) is not there now; the caller may retry after a while. */
/** Vault holds a newer layout than this rks knows: it writes nothing of rks's (another instance, upgraded, can). */
export class LayoutNewer extends RksError {
  constructor(message: string) {
    super(503, message, {}, 'layout_newer');
  }
}

export class ServiceUnavailable extends RksError {
  constructor(message: string, retryAfterSeconds = 1) {
    super(503, message, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) }, 'unavailable');
  }
}
