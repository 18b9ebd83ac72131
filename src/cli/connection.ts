import { Command } from 'commander';
import { CliError, RksHttp } from './http';
import { CONNECTION } from '../settings';
import { opt, optionOf } from './options';

/** Where rks is and how to trust it: the same two options on every command that talks to rks. */
export const urlOption = () => optionOf(CONNECTION.url);
export const caCertOption = () => optionOf(CONNECTION.caCert);

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
  try {
    const res = await http.request(method, path, {
      headers: { 'X-Vault-Token': token, ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...opts.headers },
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    });
    return res.data ? JSON.parse(res.data) : null;
  } catch (err) {
    const next = err instanceof CliError ? whatNext(err, method, path, opts.token === undefined) : undefined;
    if (!next) throw err;
    const e = err as CliError;
    throw new CliError(`${e.message} (${next})`, e.exitCode, e.code, e.answer);
  }
}

/** What the operator can do about a refusal, where rks's reason alone does not say it. */
function whatNext(err: CliError, method: string, path: string, adminToken: boolean): string | undefined {
  const fqdn = /^\/rks\/v1\/secret\/([^/?]+)$/.exec(path)?.[1];
  if (err.code === 'forbidden' && adminToken && err.answer?.reason === 'permission denied') {
    return /^\/rks\/v1\/(node|auth)\b/.test(path)
      ? 'the token of --token / RKS_TOKEN was refused: it expired, was revoked, or is no group or node token'
      : 'the token of --token / RKS_TOKEN was refused: it expired or is no administrator token; rks login gives a new one';
  }
  if (err.code === 'already_exists' && method === 'POST' && fqdn) return `to replace its certificate and key: rks secret update ${decodeURIComponent(fqdn)}`;
  if (err.code === 'still_associated' && fqdn) return `dissociate it first: rks group dissociate <group> ${decodeURIComponent(fqdn)}`;
  return undefined;
}

export const enc = encodeURIComponent;

