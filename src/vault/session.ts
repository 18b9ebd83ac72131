import type { Logger } from 'pino';
import { ServiceUnavailable } from '../errors';
import { AppRole } from './approle';
import { VaultClient, isVaultError } from './client';
import { clusterIdOf, serviceCredentials } from './identity';
import { SERVICE_AUTH_PATH, USERPASS_PATH } from './layout';
import type { Session } from './stores';
import { Sys } from './sys';
import { Tokens } from './tokens';

/** After Vault refused rks's login, rks waits this long before trying again (callers get a fast 503). */
const RETRY_REFUSED_LOGIN_MS = 5_000;
/**
 * On an old layout, a refused admin login is tried again only after this long: three refusals
 * in Vault's 15-minute counter period, far from its lockout at 20, even with several instances.
 */
const USERPASS_RETRY_MS = 5 * 60_000;
/** Refusals of the service identity's credentials for this long mean another password than init's. */
const INVALID_FOR_MS = 5_000;
/** After Vault could not be reached for a login: short, so rks is back within a second of Vault. */
const RETRY_UNREACHABLE_LOGIN_MS = 250;

/**
 * rks's own Vault session, for work no caller's token may do: reading a group's callback
 * settings and admitting a node during registration, renewing group tokens, pruning idle
 * nodes, its own certificate and /ca/sign for PSK callers. It logs in as rks's service
 * identity (an AppRole that init creates, see layout.SERVICE_AUTH_PATH), which the admin
 * login never touches, so nobody can lock rks out by failing to log in as the admin. On a
 * Vault initialised before that identity existed it uses the admin login, and says so.
 */
export class ServiceSession implements Session {
  private current?: { token: string; renewAt: number };
  private pending?: Promise<string>;
  private failed?: { until: number; error: Error };
  private readonly sys: Sys;
  private readonly appRole: AppRole;
  private readonly tokens: Tokens;
  private warned = false;
  /** When Vault last refused the admin login rks falls back to on an old layout. */
  private userpassRefusedAt = 0;
  /** Since when Vault refuses the service identity's credentials (its mount exists). */
  private invalidSince?: number;

  constructor(
    private readonly vault: VaultClient,
    private readonly admin: { login: string; password: string },
    private readonly logger: Logger,
    /** Set to 1 after a login worked, 0 after one failed. */
    private readonly up?: { set(value: number): void },
  ) {
    this.sys = new Sys(vault);
    this.appRole = new AppRole(vault, SERVICE_AUTH_PATH);
    this.tokens = new Tokens(vault);
  }

  async token(): Promise<string> {
    if (this.current && Date.now() < this.current.renewAt) return this.current.token;
    if (this.failed && Date.now() < this.failed.until) throw this.failed.error;
    this.pending ??= this.fresh().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** Forgets a failed login, so the next call tries again at once (init just made the identity). */
  retryNow(): void {
    this.failed = undefined;
  }

  /** Runs `fn` with the session token; logs in again once if Vault no longer accepts it. */
  async run<T>(fn: (token: string) => Promise<T>): Promise<T> {
    const token = await this.token();
    try {
      return await fn(token);
    } catch (err) {
      if (!isVaultError(err, 403) || this.current?.token !== token) throw err;
      this.current = undefined;
      return fn(await this.token());
    }
  }

  private async fresh(): Promise<string> {
    try {
      const token = await this.login();
      const { ttl } = await this.tokens.lookupSelf(token);
      this.current = { token, renewAt: Date.now() + Math.max(ttl, 60) * 1000 * 0.5 };
      this.failed = undefined;
      this.invalidSince = undefined;
      this.up?.set(1);
      return token;
    } catch (err) {
      const refused = err instanceof LoginRefused;
      const error = err instanceof ServiceUnavailable ? err : new ServiceUnavailable('rks cannot log in to Vault');
      this.failed = { until: Date.now() + (refused ? RETRY_REFUSED_LOGIN_MS : RETRY_UNREACHABLE_LOGIN_MS), error };
      this.up?.set(0);
      throw error;
    }
  }

  private warnOnce(message: string): void {
    if (this.warned) return;
    this.logger.warn(message);
    this.warned = true;
  }

  private async login(): Promise<string> {
    const creds = await serviceCredentials(this.admin.login, this.admin.password, await clusterIdOf(this.vault));
    const service = await this.appRole.login(creds.roleId, creds.secretId);
    if ('token' in service) return service.token;
    // An identity an rks made before the derivation was salted per cluster: until init runs again.
    if (service.refused === 'invalid') {
      const legacy = await serviceCredentials(this.admin.login, this.admin.password, null);
      const old = await this.appRole.login(legacy.roleId, legacy.secretId);
      if ('token' in old) {
        this.warnOnce('rks\'s service identity in Vault was made by an older rks: run init again (POST /rks/v1/init with the root token) to renew it');
        return old.token;
      }
    }
    // No service identity: a Vault initialised by an older rks, where rks used the admin login.
    // Each refusal there counts toward Vault's lockout of the admin: tried at most every 5 minutes.
    if (service.refused === 'no-mount' && Date.now() - this.userpassRefusedAt >= USERPASS_RETRY_MS) {
      const answer = await this.sys.userpassLogin(USERPASS_PATH, this.admin.login, this.admin.password);
      if ('token' in answer) {
        this.warnOnce('rks has no service identity in Vault yet and uses the admin login for its own work: run init again (POST /rks/v1/init with the root token) to create it');
        return answer.token;
      }
      this.userpassRefusedAt = Date.now();
    }
    // Refused credentials for a while (not the moment init makes the identity): init ran, with
    // another password than the one this rks derives its credentials from.
    this.invalidSince = service.refused === 'invalid' ? (this.invalidSince ?? Date.now()) : undefined;
    if (this.invalidSince !== undefined && Date.now() - this.invalidSince >= INVALID_FOR_MS) {
      this.logger.error(
        "rks cannot log in to Vault as its service identity: this rks was started with another administrator login or password than the one init ran with (start it with those; if the administrator's password changed since, run init again with the root token); meanwhile what needs its identity answers 503, and without --cert it serves an ephemeral self-signed certificate",
      );
    } else {
      // Expected before init: a warning that says what to do, not an error.
      this.logger.warn('rks cannot log in to Vault as its service identity: not initialised yet (POST /rks/v1/init with the root token), or started with another administrator password than the one init ran with');
    }
    throw new LoginRefused();
  }
}

/** Vault answered and said no: not initialised, or other credentials than init's. */
class LoginRefused extends ServiceUnavailable {
  constructor() {
    super('rks cannot log in to Vault: not initialised, or wrong admin credentials', 5);
  }
}
