import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import type { AxiosError, AxiosInstance, CreateAxiosDefaults } from 'axios';
import type { Logger } from 'pino';
import { BadGateway, Forbidden } from '../errors';
import type { GroupRegInfo } from '../groups/service';

export interface CallbackOptions {
  /** Milliseconds for each of the OAuth and callback requests. */
  timeoutMs: number;
  /** PEM files with CAs to trust besides the system's. */
  caFiles?: string[];
  /** Skip TLS verification (explicit, and logged). */
  insecure?: boolean;
}

/**
 * Asks a group manager whether a node is genuine: an OAuth2 client-credentials token from
 * `oauthURL`, then `GET {callbackURL}/{nodeId}` with it. 200 admits the node; 403 and 404
 * refuse it; anything else is the manager failing (502). Redirects are followed only within
 * the same origin, so credentials never travel to another host.
 */
export class CallbackVerifier {
  private http?: AxiosInstance;
  private readonly config: CreateAxiosDefaults;

  constructor(opts: CallbackOptions, logger: Logger) {
    const ca = opts.caFiles?.length ? [...tls.rootCertificates, ...opts.caFiles.map((f) => fs.readFileSync(f, 'utf8'))] : undefined;
    if (opts.insecure) logger.warn('callback TLS verification is OFF (--callback-insecure): group managers are not authenticated');
    this.config = {
      timeout: opts.timeoutMs,
      httpsAgent: new https.Agent({ keepAlive: true, ca, rejectUnauthorized: !opts.insecure }),
      maxRedirects: 3,
      validateStatus: () => true,
      proxy: false,
      // Called before each redirect hop: refuse one that leaves the origin it came from.
      beforeRedirect: (next: Record<string, any>, _res: unknown, current: { url: string }) => {
        const to = new URL(`${next.protocol}//${next.hostname}${next.port ? `:${next.port}` : ''}`).origin;
        if (to !== new URL(current.url).origin) throw new Error(`redirect to another origin (${next.hostname})`);
      },
    } as CreateAxiosDefaults;
  }

  /** axios, loaded on the first registration that needs a callback. */
  private client(): AxiosInstance {
    this.http ??= (require('axios') as typeof import('axios')).default.create(this.config);
    return this.http;
  }

  async verify(info: GroupRegInfo, nodeId: string): Promise<void> {
    const accessToken = await this.oauthToken(info);
    const url = `${info.callbackURL.replace(/\/+$/, '')}/${encodeURIComponent(nodeId)}`;
    const res = await this.request('callback', url, { method: 'GET', headers: { Authorization: `Bearer ${accessToken}` } });
    if (res.status === 200) return;
    if (res.status === 403 || res.status === 404) {
      throw new Forbidden(`node '${nodeId}' was refused by the group's callback (${res.status})`);
    }
    throw new BadGateway(`callback answered ${res.status}`);
  }

  private async oauthToken(info: GroupRegInfo): Promise<string> {
    const url = new URL(info.oauthURL);
    url.searchParams.set('grant_type', 'client_credentials');
    url.searchParams.set('client_id', info.oauthClientID);
    url.searchParams.set('client_secret', info.oauthClientSecret);
    const res = await this.request('OAuth token request', url.toString(), {
      method: 'POST',
      auth: { username: info.oauthClientID, password: info.oauthClientSecret },
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      data: 'grant_type=client_credentials',
    });
    if (res.status !== 200) throw new BadGateway(`OAuth token request answered ${res.status}`);
    const token = (res.data as { access_token?: unknown } | undefined)?.access_token;
    if (typeof token !== 'string' || token === '') throw new BadGateway('OAuth token answer has no access_token');
    return token;
  }

  private async request(what: string, url: string, config: Record<string, unknown>) {
    try {
      return await this.client().request({ url, ...config });
    } catch (err) {
      throw new BadGateway(`${what} failed: ${describe(err as AxiosError)}`);
    }
  }
}

function describe(err: AxiosError): string {
  if (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') return 'timed out';
  if (err.code === 'ECONNREFUSED') return 'connection refused';
  if (err.code === 'ENOTFOUND') return 'host not found';
  const code = err.code ?? '';
  if (/CERT|SELF_SIGNED|TLS|SSL/.test(code) || /certificate/i.test(err.message)) return `TLS verification failed (${code || err.message})`;
  if (/redirect to another origin/.test(err.message)) return err.message;
  return code || 'network error';
}
