import http from 'node:http';
import https from 'node:https';
import type { ErrorAnswer } from './wire';

/** A refusal from rks, with its status and stable code. */
export class HttpError extends Error {
  /** rks's stable error code; derived from the status for servers that send none (a classic RKS). */
  readonly code: string;

  constructor(
    readonly status: number,
    reason: string,
    code?: string,
  ) {
    super(`rks answered ${status}: ${reason}`);
    this.code = code ?? ({ 400: 'invalid_request', 403: 'forbidden', 404: 'not_found' } as Record<number, string>)[status] ?? 'unavailable';
  }
}

/** Answers that mean rks will not let this node have the key or register, not that rks is unwell. */
export const REFUSED = new Set(['forbidden', 'callback_refused', 'node_revoked', 'invalid_request']);

/** rks's answer: its status, headers and parsed body (null when none, or not JSON). */
export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** Requests to rks: one pool of kept-alive connections, a deadline on each, refusals as HttpError. */
export class Transport {
  private readonly agent: https.Agent | http.Agent;
  private readonly base: URL;

  constructor(
    url: string,
    private readonly timeoutMs: number,
    ca?: string | Buffer,
  ) {
    this.base = new URL(url);
    this.agent = this.base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 32, ca }) : new http.Agent({ keepAlive: true, maxSockets: 32 });
  }

  /** The body of a successful answer. */
  async call<T>(method: string, path: string, token: string, headers: Record<string, string> = {}): Promise<T> {
    return (await this.exchange(method, path, token, headers)).body as T;
  }

  /** One request to rks; an error status rejects with HttpError. */
  exchange(method: string, path: string, token: string, headers: Record<string, string> = {}): Promise<Answer> {
    const lib = this.base.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(new URL(path, this.base), { method, agent: this.agent, timeout: this.timeoutMs, headers: { 'X-Vault-Token': token, ...headers } }, (res) => {
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (raw += c));
        res.on('end', () => {
          let body: unknown = null;
          try {
            body = raw ? JSON.parse(raw) : null;
          } catch {
            /* not JSON */
          }
          if (res.statusCode! >= 400) {
            const answer = body as Partial<ErrorAnswer> | null;
            reject(new HttpError(res.statusCode!, answer?.errors?.join('; ') ?? 'no reason given', answer?.code));
          } else resolve({ status: res.statusCode!, headers: res.headers, body });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`rks did not answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** Closes the connections kept alive. */
  close(): void {
    this.agent.destroy();
  }
}
