import https from 'node:https';
import * as acme from 'acme-client';

/**
 * acme-client's own response interceptor retries 429 and 5xx answers, sleeping up to minutes
 * inside one call, and loses the cause of network errors. rks schedules its own retries
 * (honouring the CA's Retry-After), so each call is one attempt with a deadline: every answer
 * goes back to acme-client (which reads the statuses), and a network error as it is.
 */
acme.axios.interceptors.response.clear();
acme.axios.interceptors.response.use(null, (err: { response?: unknown }) => err.response ?? Promise.reject(err));

/** A failure the CA asked rks to wait after (429 rate limit, 503), in seconds. */
export class AcmeRetryLater extends Error {
  constructor(
    message: string,
    readonly retryAfter: number,
  ) {
    super(message);
  }
}

export interface AcmeEndpoint {
  directory: string;
  /** PEM certificates to trust for the directory's HTTPS, instead of the system's. */
  caBundle?: string;
}

export interface AcmeClientOptions {
  accountKey: string;
  accountUrl?: string;
  externalAccountBinding?: { kid: string; hmacKey: string };
  /** Deadline of each HTTP request to the CA. */
  timeoutMs: number;
}

/** Connections to CAs with their own trust store, one pool per store (a CA that issues many certificates reuses its connections). */
const agents = new Map<string, https.Agent>();
/** Issuers are few: past this many stores, the oldest pool is closed. */
const MAX_AGENTS = 32;

/** The one connection pool to CAs that `caBundle` certifies. */
export function agentFor(caBundle: string): https.Agent {
  let agent = agents.get(caBundle);
  if (!agent) {
    agent = new https.Agent({ ca: caBundle, keepAlive: true, maxSockets: 16 });
    agents.set(caBundle, agent);
    if (agents.size > MAX_AGENTS) {
      const [oldest, pool] = agents.entries().next().value as [string, https.Agent];
      agents.delete(oldest);
      pool.destroy();
    }
  }
  return agent;
}

/** The longest wait a CA's Retry-After is taken for (a week: Let's Encrypt's longest limit). */
export const MAX_RETRY_AFTER = 7 * 86400;

/** Seconds from a Retry-After header (delay or HTTP date), at most a week, or undefined. */
export function retryAfterSeconds(header: unknown, now = Date.now()): number | undefined {
  if (typeof header !== 'string' || !header.trim()) return undefined;
  const n = Number(header);
  const at = Number.isFinite(n) ? n : (Date.parse(header) - now) / 1000;
  return Number.isNaN(at) ? undefined : Math.min(MAX_RETRY_AFTER, Math.max(0, Math.ceil(at)));
}

/**
 * An acme-client Client for one issuer: its own trust store and a deadline on every request
 * (acme-client has one shared axios instance, so both are set per request here), and the
 * CA's Retry-After remembered so that a refusal becomes AcmeRetryLater.
 */
export function acmeClient(endpoint: AcmeEndpoint, opts: AcmeClientOptions): { client: acme.Client; retryAfter(): number | undefined } {
  const client = new acme.Client({
    directoryUrl: endpoint.directory,
    accountKey: opts.accountKey,
    accountUrl: opts.accountUrl,
    externalAccountBinding: opts.externalAccountBinding,
    // Polls of a challenge or order: 1, 2, 4, 8, 8… s, about a minute in all.
    backoffAttempts: 10,
    backoffMin: 1000,
    backoffMax: 8000,
  });
  // Not a pool per client: an order is a client, and each pool kept its connections open.
  const agent = endpoint.caBundle ? agentFor(endpoint.caBundle) : undefined;
  let retryAfter: number | undefined;
  const http = (client as unknown as { http: { request(url: string, method: string, o?: object): Promise<{ status: number; headers: Record<string, unknown> }> } }).http;
  const request = http.request.bind(http);
  http.request = async (url, method, o = {}) => {
    // A CA's answers are small (JSON, a PEM chain): anything larger is refused, not buffered.
    const resp = await request(url, method, { ...o, timeout: opts.timeoutMs, maxContentLength: 1 << 20, maxRedirects: 5, ...(agent ? { httpsAgent: agent } : {}) });
    if (resp.status === 429 || resp.status === 503) retryAfter = retryAfterSeconds(resp.headers['retry-after']) ?? retryAfter;
    return resp;
  };
  return { client, retryAfter: () => retryAfter };
}

export { acme };
