import { BadRequest } from '../errors';
import { USERPASS_PATH } from '../vault/layout';
import { Sys } from '../vault/sys';

export class AdminService {
  constructor(private readonly sys: Sys) {}

  /** Exchanges the administrator's login and password for an admin token. */
  async login(login: string, password: string): Promise<string> {
    const token = await this.sys.userpassLogin(USERPASS_PATH, login, password);
    if (!token) throw new BadRequest('invalid login or password');
    return token;
  }
}
