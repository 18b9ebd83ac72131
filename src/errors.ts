/**
 * Typed errors that carry their own HTTP status, so handlers never guess.
 * Messages are shown to callers: they must never contain a token, a password or a key.
 */
export class RksError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Headers the answer carries (Retry-After, Allow). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequest extends RksError {
  constructor(message: string) {
    super(400, message);
  }
}

export class Unauthorized extends RksError {
  constructor(message = 'authentication required') {
    super(401, message);
  }
}

export class Forbidden extends RksError {
  constructor(message = 'permission denied') {
    super(403, message);
  }
}

export class NotFound extends RksError {
  constructor(message: string) {
    super(404, message);
  }
}

export class MethodNotAllowed extends RksError {
  constructor(allow: string) {
    super(405, 'method not allowed', { Allow: allow });
  }
}

export class UnsupportedMediaType extends RksError {
  constructor(message: string) {
    super(415, message);
  }
}

/** A request that does not match the contract; `items` say where and why (see http/errors). */
export class ValidationFailed extends RksError {
  constructor(readonly items: { path: string; keyword: string; message: string }[]) {
    super(400, 'the request does not match the contract');
  }
}

export class Conflict extends RksError {
  constructor(message: string) {
    super(409, message);
  }
}

export class Locked extends RksError {
  constructor(message: string) {
    super(423, message);
  }
}

export class TooManyRequests extends RksError {
  constructor(message: string, retryAfterSeconds: number) {
    super(429, message, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) });
  }
}

export class BadGateway extends RksError {
  constructor(message: string) {
    super(502, message);
  }
}

export class ServiceUnavailable extends RksError {
  constructor(message: string) {
    super(503, message);
  }
}
