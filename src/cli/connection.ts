import { Command } from 'commander';
import { CliError, RksHttp } from './http';
import { opt } from './options';

/** Where rks is and how to trust it: the same two options on every command that talks to rks. */
export const urlOption = () => opt('--url <url>', 'rks address', 'RKS_URL').default('https://127.0.0.1:8080');
export const caCertOption = () => opt('--ca-cert <file>', "CA certificate that rks's TLS certificate chains to", 'RKS_CA_CERT');

/** Options every command that talks to rks shares. */
export interface Conn {
  url: string;
  caCert?: string;
  json?: boolean;
  token?: string;
}

export function connected(cmd: Command, tokenHelp = 'admin token (from rks login)'): Command {
  return cmd
    .addOption(urlOption())
    .addOption(caCertOption())
    .addOption(opt('--token <token>', tokenHelp, 'RKS_TOKEN'))
    .option('--json', 'print JSON, for scripts');
}

export async function call(o: Conn, method: string, path: string, opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {}): Promise<unknown> {
  const token = opts.token ?? o.token;
  if (!token) throw new CliError('no token: pass --token or set RKS_TOKEN (rks login prints one)', 2);
  const http = new RksHttp({ url: o.url, caCert: o.caCert });
  const res = await http.request(method, path, {
    headers: { 'X-Vault-Token': token, ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...opts.headers },
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
  });
  return res.data ? JSON.parse(res.data) : null;
}

export const enc = encodeURIComponent;

