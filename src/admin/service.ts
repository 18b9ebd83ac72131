import { createHash, timingSafeEqual } from 'node:crypto';
import { BadRequest, Locked, TooManyRequests } from '../errors';
import { parseLogin } from '../names';
import { ADMIN_POLICY, USERPASS_LOCKOUT, USERPASS_PATH } from '../vault/layout';
import type { LoginAnswer, LoginStore, TokenStore } from '../vault/stores';
import { sourceKey } from '../address';
import { FailureCounter } from './failures';

export { sourceKey } from '../address';

export interface LoginLimits {
  /** Failed logins from one source address before it must pause for `sourceResetMs`. */
  perSource: number;
  sourceResetMs?: number;
  /** Failed logins of one login name passed on to Vault before rks stops passing them. */
  perLogin: number;
  /** Quiet time after which a login name's count starts again: Vault's lockout counter reset. */
  loginResetMs?: number;
}

/** Logins rks cannot vouch for that may be waiting on Vault at once (each costs Vault a bcrypt). */
const MAX_UNVOUCHED_IN_FLIGHT = 16;

/**
 * The administrator's login. `POST /rks/v1/admin/login` needs no token, so a stranger must not
 * be able to turn it against anyone: only failures count, and an attempt is counted as a
 * failure before Vault is asked, so concurrent attempts cannot slip past a limit together. A
 * source address that keeps failing is refused without its attempts being checked.
 *
 * The configured administrator's password is known to rks: a wrong one is refused here and
 * never reaches Vault, so Vault's lockout never counts it, and no limit but each address's own
 * applies to that login. No number of strangers' addresses can keep the administrator out;
 * what bounds their guessing is the password's strength, which rks checks when it starts.
 * Other login names are passed to Vault, at most `perLogin` failures per quiet period, so
 * Vault never locks a user because of rks.
 */
export class AdminService {
  private readonly sources: FailureCounter;
  private readonly logins: FailureCounter;
  private readonly configured?: { login: string; digest: Buffer };
  private unvouchedInFlight = 0;
  /** How long Vault takes to refuse a password (a bcrypt), learnt from its answers. */
  private refusalMs = 60;

  constructor(
    private readonly sys: LoginStore,
    private readonly tokens: Pick<TokenStore, 'lookupSelf'>,
    limits: LoginLimits,
    admin?: { login: string; password: string },
  ) {
    // Sources may be forgotten when the table is full (an attacker with that many addresses
    // gains little); login names are not, so Vault's lockout stays out of reach.
    this.sources = new FailureCounter(limits.perSource, limits.sourceResetMs ?? 60_000, 10_000, 'forget');
    this.logins = new FailureCounter(limits.perLogin, limits.loginResetMs ?? USERPASS_LOCKOUT.counterResetSeconds * 1000, 100_000, 'refuse');
    if (admin) this.configured = { login: admin.login.toLowerCase(), digest: digest(admin.password) };
  }

  /**
   * Exchanges a login and password for an admin token; `address` is the caller's. A wrong
   * password for the configured administrator takes the same path as any login's (the same
   * limits, the same answers, as long as Vault takes), but is refused by rks itself: how a
   * refusal looks tells no one which login is rks's.
   */
  async login(login: string, password: string, address: string): Promise<string> {
    const name = parseLogin(login);
    const source = sourceKey(address);
    const sourceWait = this.sources.blockedFor(source);
    if (sourceWait) throw new TooManyRequests('too many failed logins from this address; retry later', sourceWait);
    const administrator = this.configured?.login === name;
    if (administrator && timingSafeEqual(digest(password), this.configured!.digest)) return this.administrator(name, password, source);

    const wait = this.logins.blockedFor(name);
    if (wait) {
      this.sources.fail(source);
      this.logins.fail(name);
      throw new TooManyRequests('too many failed logins for this login; retry later', wait);
    }
    if (this.unvouchedInFlight >= MAX_UNVOUCHED_IN_FLIGHT) throw new TooManyRequests('too many logins in progress; retry shortly', 1);
    this.sources.fail(source);
    this.logins.fail(name);
    this.unvouchedInFlight++;
    let answer: LoginAnswer;
    const started = performance.now();
    try {
      if (administrator) {
        // Never asked of Vault, so Vault's lockout never counts it: as long as Vault takes to refuse.
        await new Promise((r) => setTimeout(r, this.refusalMs * (0.8 + 0.4 * Math.random())));
        answer = { refused: 'invalid' };
      } else {
        answer = await this.sys.userpassLogin(USERPASS_PATH, name, password);
        if ('refused' in answer && answer.refused === 'invalid') this.refusalMs = 0.8 * this.refusalMs + 0.2 * (performance.now() - started);
      }
    } finally {
      this.unvouchedInFlight--;
    }
    if ('token' in answer) {
      this.logins.succeed(name);
      this.sources.undo(source);
      return answer.token;
    }
    throw refusal(answer);
  }

  /** Whether `token` is an administrator's (or Vault's root): for answers strangers do not get. */
  async isAdministrator(token: string): Promise<boolean> {
    if (!token) return false;
    const self = await this.tokens.lookupSelf(token).catch(() => undefined);
    return Boolean(self?.policies.some((p) => p === ADMIN_POLICY || p === 'root'));
  }

  /** The right password: no per-login limit and no cap (strangers cannot keep it out). */
  private async administrator(name: string, password: string, source: string): Promise<string> {
    const answer = await this.sys.userpassLogin(USERPASS_PATH, name, password);
    if ('token' in answer) {
      this.logins.succeed(name);
      return answer.token;
    }
    // Vault holds another password than rks's configuration: a failure like any other.
    this.sources.fail(source);
    throw refusal(answer);
  }
}

function refusal(answer: { refused: 'invalid' | 'locked' }): Error {
  if (answer.refused === 'locked') {
    return new Locked('this login is locked by Vault after too many failed logins: it unlocks by itself after 15 minutes, or an operator unlocks it (see the README)', 'login_locked');
  }
  return new BadRequest('invalid login or password');
}

function digest(password: string): Buffer {
  return createHash('sha256').update(password, 'utf8').digest();
}
