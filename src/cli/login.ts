import { Command } from 'commander';
import { readSecret } from '../settings';
import { CliError, RksHttp } from './http';
import { opt } from './options';
import { Conn, connected } from './connection';
import { out, saveSecretFile } from './output';

export function loginCommand(): Command {
  return connected(new Command('login').description('Log in as the administrator and print the admin token'))
    .addOption(opt('--login <name>', 'administrator login', 'RKS_ADMIN_LOGIN').default('admin'))
    .addOption(opt('--password <password>', 'password (prefer --password-file)', 'RKS_ADMIN_PASSWORD'))
    .addOption(opt('--password-file <file>', 'file holding the password', 'RKS_ADMIN_PASSWORD_FILE'))
    .option('--save <file>', 'also write the token to this file (mode 0600)')
    .action(async (o: Conn & { login: string; password?: string; passwordFile?: string; save?: string }) => {
      const password = readSecret(o.password, o.passwordFile, '--password-file');
      if (!password) throw new CliError('no password: pass --password-file or set RKS_ADMIN_PASSWORD', 2);
      const http = new RksHttp({ url: o.url, caCert: o.caCert });
      const res = await http.request('POST', '/rks/v1/admin/login', {
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ login: o.login, password }),
      });
      const { adminToken } = JSON.parse(res.data) as { adminToken: string };
      if (o.save) saveSecretFile(o.save, adminToken, 'admin token');
      out(o, { adminToken }, adminToken);
    });
}
