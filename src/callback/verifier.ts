import fs from 'node:fs';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { BadGateway, Forbidden } from '../errors';
import type { GroupRegInfo } from '../records/groups';

export interface CallbackOptions {
  /** Milliseconds for a whole verification: OAuth token and callback, from connect to last byte. */
  timeoutMs: number;
  /** PEM files with CAs to trust besides the system's. */
  caFiles?: string[];
  /** Skip TLS verification (explicit, and logged). */
  insecure?: boolean;
  /** Largest answer read from a group manager. */
  maxAnswerBytes?: number;
  /** How often the CA files are looked at for changes (milliseconds). */
  caCheckMs?: number;
}

const MAX_REDIRECTS = 3;

/**
 * Asks a group manager whether a node is genuine: an OAuth2 client-credentials token from
 * `oauthURL`, then `GET {callbackURL}/{nodeId}` with it. 200 admits the node; 403 and 404
 * refuse it; anything else is the manager failing (502). The whole exchange has one deadline
 * and each answer a size bound, so a slow or hostile manager costs a registration at most
 * the deadline. Redirects are followed only within the same origin, so credentials never
 * travel to another host.
 */
export class CallbackVerifier {
  private readonly trust: TrustStore;
  private readonly maxAnswerBytes: number;

  constructor(
    private readonly opts: CallbackOptions,
    logger: Logger,
  ) {
    if (opts.insecure) logger.warn('callback TLS verification is OFF (--callback-insecure): group managers are not authenticated');
    this.trust = new TrustStore(opts.caFiles ?? [], Boolean(opts.insecure), opts.caCheckMs ?? 5_000, logger);
    this.maxAnswerBytes = opts.maxAnswerBytes ?? 64 * 1024;
  }

  async verify(info: GroupRegInfo, nodeId: string): Promise<void> {
    const deadline = AbortSignal.timeout(this.opts.timeoutMs);
    const accessToken = await this.oauthToken(info, deadline);
    const url = `${info.callbackURL.replace(/\/+$/, '')}/${encodeURIComponent(nodeId)}`;
    const res = await this.fetch('callback', url, { method: 'GET', headers: { Authorization: `Bearer ${accessToken}` } }, deadline);
    if (res.status === 200) return;
    if (res.status === 403 || res.status === 404) {
      throw new Forbidden(`node '${nodeId}' was refused by the group's callback (${res.status})`, 'callback_refused');
    }
    throw new BadGateway(`callback answered ${res.status}`);
  }

  close(): Promise<void> {
    return this.trust.close();
  }

  private async oauthToken(info: GroupRegInfo, deadline: AbortSignal): Promise<string> {
    let url: URL;
    try {
      url = new URL(info.oauthURL);
    } catch {
      throw new BadGateway("the group's oauthURL is not a valid URL");
    }
    url.searchParams.set('grant_type', 'client_credentials');
    url.searchParams.set('client_id', info.oauthClientID);
    url.searchParams.set('client_secret', info.oauthClientSecret);
    const basic = Buffer.from(`${info.oauthClientID}:${info.oauthClientSecret}`).toString('base64');
    const res = await this.fetch(
      'OAuth token request',
      url.toString(),
      {
        method: 'POST',
        headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      },
      deadline,
    );
    if (res.status !== 200) throw new BadGateway(`OAuth token request answered ${res.status}`);
    let token: unknown;
    try {
      token = (JSON.parse(res.body) as { access_token?: unknown } | null)?.access_token;
    } catch {
      throw new BadGateway('OAuth token answer is not JSON');
    }
    if (typeof token !== 'string' || token === '') throw new BadGateway('OAuth token answer has no access_token');
    return token;
  }

  /** One request, its same-origin redirects, and its answer read up to the size bound. */
  private async fetch(
    what: string,
    url: string,
    init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
    deadline: AbortSignal,
  ): Promise<{ status: number; body: string }> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw new BadGateway(`${what} failed: not a valid URL`);
    }
    let { method, body } = init;
    for (let hop = 0; ; hop++) {
      try {
        const res = await request(target, { dispatcher: this.trust.dispatcher(), method, headers: init.headers, body, signal: deadline });
        const location = res.headers.location;
        if ([301, 302, 303, 307, 308].includes(res.statusCode) && typeof location === 'string' && hop < MAX_REDIRECTS) {
          await res.body.dump();
          const next = new URL(location, target);
          if (next.origin !== target.origin) throw new BadGateway(`${what} failed: redirect to another origin (${next.hostname})`);
          if (res.statusCode === 303 || (res.statusCode !== 307 && res.statusCode !== 308 && method === 'POST')) {
            method = 'GET';
            body = undefined;
          }
          target = next;
          continue;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > this.maxAnswerBytes) {
            res.body.destroy();
            throw new BadGateway(`${what} failed: answer larger than ${this.maxAnswerBytes} bytes`);
          }
          chunks.push(chunk as Buffer);
        }
        return { status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') };
      } catch (err) {
        if (err instanceof BadGateway) throw err;
        throw new BadGateway(`${what} failed: ${deadline.aborted ? `no complete answer within ${this.opts.timeoutMs / 1000} s` : describe(err)}`);
      }
    }
  }
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  const message = e.message ?? '';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connection timed out';
  if (/CERT|SELF_SIGNED|TLS|SSL|ALTNAME/.test(code) || /certificate/i.test(message)) return `TLS verification failed (${code || 'certificate'})`;
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection closed by the server';
  return code || 'network error';
}

/**
 * The CAs trusted for group managers, built into one TLS context at start and again only when
 * a CA file changes: a trust store of a few hundred certificates is far too costly to parse
 * for every connection.
 */
class TrustStore {
  private agent: Agent;
  private stamp: string;
  private checkedAt = Date.now();

  constructor(
    private readonly files: string[],
    private readonly insecure: boolean,
    private readonly checkMs: number,
    private readonly logger: Logger,
  ) {
    this.stamp = this.readStamp();
    this.agent = this.build();
  }

  dispatcher(): Agent {
    if (this.files.length > 0 && Date.now() - this.checkedAt >= this.checkMs) {
      this.checkedAt = Date.now();
      const stamp = this.readStamp();
      if (stamp !== this.stamp) {
        try {
          const next = this.build();
          void this.agent.close();
          this.agent = next;
          this.stamp = stamp;
          this.logger.info({ files: this.files }, 'callback CA files changed: trust store rebuilt');
        } catch (err) {
          this.logger.error({ files: this.files, err: (err as Error).message }, 'callback CA files changed but cannot be read: keeping the previous trust store');
        }
      }
    }
    return this.agent;
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private build(): Agent {
    const secureContext = this.files.length
      ? tls.createSecureContext({ ca: [...tls.rootCertificates, ...this.files.map((f) => fs.readFileSync(f, 'utf8'))] })
      : undefined;
    return new Agent({
      connections: 32,
      keepAliveTimeout: 10_000,
      connect: { ...(secureContext ? { secureContext } : {}), rejectUnauthorized: !this.insecure },
    });
  }

  private readStamp(): string {
    return this.files
      .map((f) => {
        try {
          const st = fs.statSync(f);
          return `${st.mtimeMs}:${st.size}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }
}
