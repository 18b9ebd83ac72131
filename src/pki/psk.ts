import { createHash, pbkdf2Sync, randomBytes } from 'node:crypto';
import type * as Jose from 'jose';
import { Unauthorized } from '../errors';

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

/** SHA-256 of the DER certificate: upper-case hex pairs joined by ':'. */
export function sha256Fingerprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

export interface VerifyOptions {
  /** Off only where a known-answer vector has long expired. */
  checkExpiry?: boolean;
}

/**
 * Signs and checks PSK JWTs. Deriving a key costs 100 000 hash rounds, so keys are kept per
 * salt (bounded): a client that reuses its token pays once.
 */
export class PskJwt {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly psk: string) {}

  async sign(payload: Record<string, unknown>, expiresInSeconds = 3600): Promise<string> {
    const salt = randomBytes(SALT_BYTES);
    const { SignJWT } = await jose();
    return new SignJWT(payload)
      .setProtectedHeader({ typ: 'JWT', alg: 'HS256', salt: salt.toString('base64') })
      .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
      .sign(this.key(salt.toString('base64')));
  }

  /** The payload of a valid token; Unauthorized with the reason otherwise. */
  async verify(token: string, opts: VerifyOptions = {}): Promise<Record<string, unknown>> {
    const { decodeProtectedHeader, errors: joseErrors, jwtVerify } = await jose();
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new Unauthorized('invalid PSK token: not a JWT');
    }
    if (header.alg !== 'HS256') throw new Unauthorized('invalid PSK token: alg must be HS256');
    const salt = header.salt;
    if (typeof salt !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(salt)) {
      throw new Unauthorized('invalid PSK token: no salt in its header');
    }
    try {
      const { payload } = await jwtVerify(token, this.key(salt), {
        algorithms: ['HS256'],
        ...(opts.checkExpiry === false ? { currentDate: new Date(0) } : {}),
      });
      if (opts.checkExpiry !== false && payload.exp === undefined) {
        throw new Unauthorized('invalid PSK token: it has no expiry');
      }
      return payload;
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new Unauthorized('invalid PSK token: expired');
      throw new Unauthorized('invalid PSK token: bad signature');
    }
  }

  private key(salt: string): Buffer {
    let key = this.keys.get(salt);
    if (!key) {
      key = deriveKey(this.psk, Buffer.from(salt, 'base64'));
      if (this.keys.size >= 1024) this.keys.delete(this.keys.keys().next().value!);
      this.keys.set(salt, key);
    }
    return key;
  }
}

/** The Bearer token of an Authorization header, if any. */
export function bearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
}
