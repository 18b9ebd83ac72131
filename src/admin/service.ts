import { createHash, timingSafeEqual } from 'node:crypto';
import { BadRequest, Locked, TooManyRequests } from '../errors';
import { parseLogin } from '../names';
import { USERPASS_LOCKOUT, USERPASS_PATH } from '../vault/layout';
import { Sys } from '../vault/sys';
import { FailureCounter } from './failures';

export interface LoginLimits {
  /** Failed logins from one source address before it must pause for `sourceResetMs`. */
  perSource: number;
  sourceResetMs?: number;
  /** Failed logins of one login name passed on to Vault before rks stops passing them. */
  perLogin: number;
  /** Quiet time after which a login name's count starts again: Vault's lockout counter reset. */
  loginResetMs?: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = { perSource: 10, perLogin: 5 };

/**
 * The administrator's login. `POST /rks/v1/admin/login` needs no token, so a stranger must not
 * be able to turn it against anyone: only failures count; a source address that keeps failing
 * is refused without its attempts being checked; and no login name gets more failures through
 * to Vault than Vault's lockout allows, so Vault never locks a user because of rks. The
 * password rks is configured with still gets through a refused login name: a stranger's
 * failures never lock out the administrator who knows it.
 */
export class AdminService {
  private readonly sources: FailureCounter;
  private readonly logins: FailureCounter;
  private readonly configured?: { login: string; digest: Buffer };

  constructor(
    private readonly sys: Sys,
    limits: LoginLimits = DEFAULT_LOGIN_LIMITS,
    admin?: { login: string; password: string },
  ) {
    this.sources = new FailureCounter(limits.perSource, limits.sourceResetMs ?? 60_000);
    this.logins = new FailureCounter(limits.perLogin, limits.loginResetMs ?? USERPASS_LOCKOUT.counterResetMs);
    if (admin) this.configured = { login: admin.login.toLowerCase(), digest: digest(admin.password) };
  }

  /** Exchanges a login and password for an admin token; `source` is the caller's address. */
  async login(login: string, password: string, source: string): Promise<string> {
    const name = parseLogin(login);
    const sourceWait = this.sources.blockedFor(source);
    if (sourceWait) throw new TooManyRequests('too many failed logins from this address; retry later', sourceWait);
    const loginWait = this.isConfigured(name, password) ? 0 : this.logins.blockedFor(name);
    if (loginWait) {
      this.sources.fail(source);
      throw new TooManyRequests('too many failed logins for this login; retry later', loginWait);
    }
    const answer = await this.sys.userpassLogin(USERPASS_PATH, name, password);
    if ('token' in answer) {
      this.logins.succeed(name);
      return answer.token;
    }
    if (answer.refused === 'locked') {
      throw new Locked('this login is locked by Vault after too many failed logins: it unlocks by itself after 15 minutes, or an operator unlocks it (see the README)');
    }
    this.sources.fail(source);
    this.logins.fail(name);
    throw new BadRequest('invalid login or password');
  }

  private isConfigured(name: string, password: string): boolean {
    return Boolean(this.configured && this.configured.login === name && timingSafeEqual(digest(password), this.configured.digest));
  }
}

function digest(password: string): Buffer {
  return createHash('sha256').update(password, 'utf8').digest();
}
