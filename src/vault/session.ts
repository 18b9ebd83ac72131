import type { Logger } from 'pino';
import { ServiceUnavailable } from '../errors';
import { isVaultError } from './client';
import { USERPASS_PATH } from './layout';
import { Sys } from './sys';

/**
 * rks's own admin session, for work no caller's token may do: creating a node's role during
 * registration, reading a group's callback settings, renewing group tokens. Logs in with the
 * configured admin credentials on first use and again before the token runs out.
 */
export class ServiceSession {
  private current?: { token: string; renewAt: number };
  private pending?: Promise<string>;

  constructor(
    private readonly sys: Sys,
    private readonly login: string,
    private readonly password: string,
    private readonly logger: Logger,
  ) {}

  async token(): Promise<string> {
    if (this.current && Date.now() < this.current.renewAt) return this.current.token;
    this.pending ??= this.fresh().finally(() => (this.pending = undefined));
    return this.pending;
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
    const token = await this.sys.userpassLogin(USERPASS_PATH, this.login, this.password);
    if (!token) {
      this.logger.error({ login: this.login }, 'rks cannot log in with its configured admin credentials (run init?)');
      throw new ServiceUnavailable('rks cannot log in to Vault: not initialised, or wrong admin credentials');
    }
    const { ttl } = await this.sys.lookupSelf(token);
    this.current = { token, renewAt: Date.now() + Math.max(ttl, 60) * 1000 * 0.5 };
    return token;
  }
}
