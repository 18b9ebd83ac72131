import { createHash, pbkdf2, pbkdf2Sync, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type * as Jose from 'jose';
import { RksError, TooManyRequests, Unauthorized } from '../errors';

/**
 * The pre-shared-key JWT of the Resoto / Fix Inventory trust bootstrap: HS256 with a key
 * derived from the passphrase by PBKDF2-HMAC-SHA256 (100 000 iterations, 16 random bytes of
 * salt, 32-byte key); the salt travels in the JWT header as standard base64.
 */
const ITERATIONS = 100_000;
const KEY_BYTES = 32;
const SALT_BYTES = 16;

/** jose, loaded on first use: only an rks with a PSK needs it. */
const jose = (): Promise<typeof Jose> => import('jose');

export function deriveKey(psk: string, salt: Buffer): Buffer {
  return pbkdf2Sync(psk, salt, ITERATIONS, KEY_BYTES, 'sha256');
}

const pbkdf2Async = promisify(pbkdf2);
/**
 * Derivations running at once. Each costs tens of milliseconds and the salt is the caller's
 * choice, so they run off the event loop and a flood of fresh tokens gets 429s instead of
 * starving every other request.
 */
const MAX_DERIVATIONS = 16;

/** SHA-256 of the DER certificate: upper-case hex pairs joined by ':'. */
export function sha256Fingerprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

/**
 * What a PSK JWT is for, in its `purpose` claim. A request token admits its bearer; a
 * fingerprint token vouches for the CA (`GET /ca/cert` hands it to anyone) and admits no one.
 * Tokens that predate the claim: one carrying `sha256_fingerprint` vouches for a CA (older rks,
 * Resoto's core), one without is a request (resotolib signs `{}`).
 */
export type PskPurpose = 'request' | 'ca-fingerprint';

export function purposeOf(payload: Record<string, unknown>): PskPurpose | 'other' {
  if (payload.purpose !== undefined) return payload.purpose === 'request' || payload.purpose === 'ca-fingerprint' ? payload.purpose : 'other';
  if (payload.sha256_fingerprint !== undefined) return 'ca-fingerprint';
  // A request says nothing but when it is valid: any other claim is some other token of the PSK's.
  return Object.keys(payload).every((k) => TIME_CLAIMS.has(k)) ? 'request' : 'other';
}

const TIME_CLAIMS = new Set(['exp', 'iat', 'nbf', 'jti']);

/** Longest a PSK token may claim to live: one seen once (a log, a proxy) must not serve for ever. */
export const MAX_LIFETIME_SECONDS = 24 * 3600;

export interface VerifyOptions {
  /** Off only where a known-answer vector has long expired. */
  checkExpiry?: boolean;
  /** Who asks (an address): one source holds at most PER_SOURCE of the derivation slots. */
  source?: string;
}

const SHOWN_PURPOSE: Record<PskPurpose, string> = {
  request: 'a request token',
  'ca-fingerprint': 'a CA fingerprint (it vouches for the CA and admits no one)',
};

/** Derivations one source may have running at once: a stranger cannot take every slot. */
const PER_SOURCE = 2;

/**
 * Signs and checks PSK JWTs. Deriving a key costs 100 000 hash rounds, so keys are kept per
 * salt (bounded): a client that reuses its token pays once.
 */
export class PskJwt {
  private readonly keys = new Map<string, Buffer>();
  private deriving = 0;
  private readonly bySource = new Map<string, number>();

  constructor(private readonly psk: string) {}

  /** A token that admits its bearer where a PSK JWT does (`POST /ca/sign`). */
  signRequest(expiresInSeconds = 300): Promise<string> {
    return this.sign({ purpose: 'request' }, expiresInSeconds);
  }

  /** A token that vouches for a CA certificate and admits no one. */
  signFingerprint(sha256Fingerprint: string, expiresInSeconds = 3600): Promise<string> {
    return this.sign({ purpose: 'ca-fingerprint', sha256_fingerprint: sha256Fingerprint }, expiresInSeconds);
  }

  private async sign(payload: Record<string, unknown>, expiresInSeconds: number): Promise<string> {
    const salt = randomBytes(SALT_BYTES);
    const { SignJWT } = await jose();
    return new SignJWT(payload)
      .setProtectedHeader({ typ: 'JWT', alg: 'HS256', salt: salt.toString('base64') })
      .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
      .sign(await this.key(salt.toString('base64'), true));
  }

  /**
   * The payload of a valid token for `purpose`; Unauthorized with the reason otherwise. The
   * purpose is checked before any key is derived: a token for something else costs nothing.
   */
  async verify(token: string, purpose: PskPurpose, opts: VerifyOptions = {}): Promise<Record<string, unknown>> {
    const { decodeJwt, decodeProtectedHeader, errors: joseErrors, jwtVerify } = await jose();
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new Unauthorized('invalid PSK token: not a JWT');
    }
    if (header.alg !== 'HS256') throw new Unauthorized('invalid PSK token: alg must be HS256');
    const salt = header.salt;
    // 8 to 64 bytes of salt (the recipe uses 16): a huge salt would make derivation dearer.
    if (typeof salt !== 'string' || !/^[A-Za-z0-9+/]{11,86}={0,2}$/.test(salt)) {
      throw new Unauthorized('invalid PSK token: no salt (8 to 64 bytes, base64) in its header');
    }
    // A token for something else, expired or without expiry is refused before a key is derived for it.
    let claims: Record<string, unknown>;
    try {
      claims = decodeJwt(token);
    } catch {
      throw new Unauthorized('invalid PSK token: not a JWT');
    }
    const its = purposeOf(claims);
    if (its !== purpose) throw new Unauthorized(`invalid PSK token: it is ${its === 'other' ? 'for another purpose' : SHOWN_PURPOSE[its]}, not ${SHOWN_PURPOSE[purpose]}`);
    if (opts.checkExpiry !== false) {
      const exp = claims.exp;
      if (typeof exp !== 'number') throw new Unauthorized('invalid PSK token: it has no expiry');
      if (exp <= Date.now() / 1000) throw new Unauthorized('invalid PSK token: expired');
      if (exp > Date.now() / 1000 + MAX_LIFETIME_SECONDS) throw new Unauthorized('invalid PSK token: it claims to live longer than a day (sign one for minutes, as resotolib does)');
    }
    try {
      const key = await this.key(salt, false, opts.source);
      const { payload } = await jwtVerify(token, key, {
        algorithms: ['HS256'],
        ...(opts.checkExpiry === false ? { currentDate: new Date(0) } : {}),
      });
      // Remembered only once it proved the PSK: a stranger's salts never push a client's out.
      this.remember(salt, key);
      return payload;
    } catch (err) {
      if (err instanceof RksError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new Unauthorized('invalid PSK token: expired');
      throw new Unauthorized('invalid PSK token: bad signature');
    }
  }

  private async key(salt: string, keep: boolean, source?: string): Promise<Buffer> {
    const known = this.keys.get(salt);
    if (known) {
      this.remember(salt, known);
      return known;
    }
    // rks's own signing (a fingerprint every few minutes) never waits on strangers' tokens.
    if (!keep && this.deriving >= MAX_DERIVATIONS) throw new TooManyRequests('too many PSK tokens being checked at once; retry shortly', 1);
    const mine = source === undefined ? 0 : (this.bySource.get(source) ?? 0);
    if (mine >= PER_SOURCE) throw new TooManyRequests('too many PSK tokens from this address being checked at once; retry shortly', 1);
    this.deriving++;
    if (source !== undefined) this.bySource.set(source, mine + 1);
    try {
      const key = await pbkdf2Async(this.psk, Buffer.from(salt, 'base64'), ITERATIONS, KEY_BYTES, 'sha256');
      if (keep) this.remember(salt, key);
      return key;
    } finally {
      this.deriving--;
      if (source !== undefined) {
        const left = (this.bySource.get(source) ?? 1) - 1;
        if (left > 0) this.bySource.set(source, left);
        else this.bySource.delete(source);
      }
    }
  }

  /** Most recently used last: the least recently used key goes first. */
  private remember(salt: string, key: Buffer): void {
    this.keys.delete(salt);
    if (this.keys.size >= 1024) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(salt, key);
  }

}

/** The Bearer token of an Authorization header, if any. */
export function bearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
}
