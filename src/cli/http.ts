import fs from 'node:fs';
import https from 'node:https';
import type { AxiosInstance, AxiosResponse } from 'axios';

/** A failure the CLI prints as one line: the server's reason, never a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** The server's stable error code, when it sent one. */
    readonly code?: string,
    /** rks's answer, when it gave one: its status and reason, apart (for --json). */
    readonly answer?: { status: number; reason: string },
  ) {
    super(message);
  }
}

export interface ConnectOptions {
  url: string;
  /** PEM file of the CA that issued rks's certificate (else the system CAs). */
  caCert?: string;
  /** Skip TLS verification: only where trust comes from elsewhere (the PSK fingerprint). */
  insecure?: boolean;
}

/** HTTP to rks for the CLI: its error bodies become CliError messages. */
export class RksHttp {
  private readonly http: AxiosInstance;

  constructor(readonly opts: ConnectOptions) {
    let url: URL | undefined;
    try {
      url = new URL(opts.url);
    } catch {
      url = undefined;
    }
    if (!url || !['https:', 'http:'].includes(url.protocol)) {
      throw new CliError(`--url / RKS_URL: '${opts.url}' is not an address like https://rks.example.com:8080`, 2);
    }
    let ca: Buffer | undefined;
    if (opts.caCert && !opts.insecure) {
      try {
        ca = fs.readFileSync(opts.caCert);
      } catch {
        throw new CliError(`cannot read the CA certificate ${opts.caCert} (--ca-cert / RKS_CA_CERT)`, 2);
      }
    }
    // Loaded here, not at start-up: `rks serve` never needs it.
    this.http = (require('axios') as typeof import('axios')).default.create({
      baseURL: opts.url.replace(/\/+$/, ''),
      httpsAgent: new https.Agent({ ca, rejectUnauthorized: !opts.insecure }),
      validateStatus: () => true,
      maxRedirects: 0,
      timeout: 30_000,
      proxy: false,
      transitional: { silentJSONParsing: true, forcedJSONParsing: false },
      responseType: 'text',
    });
  }

  async request(method: string, path: string, opts: { headers?: Record<string, string>; body?: string } = {}): Promise<AxiosResponse<string>> {
    const res = await this.raw(method, path, opts);
    if (res.status >= 400) {
      const wait = Number(res.headers['retry-after']);
      const retry = res.status === 429 || res.status === 503 ? (wait > 0 ? ` (retry in ${wait} s)` : '') : '';
      const why = `${reason(res.data)}${retry}`;
      throw new CliError(`${res.status}: ${why}`, 1, codeOf(res.data), { status: res.status, reason: why });
    }
    return res;
  }

  /** Like request, but an error status is an answer, not an exception (unreachable rks still is). */
  async raw(method: string, path: string, opts: { headers?: Record<string, string>; body?: string } = {}): Promise<AxiosResponse<string>> {
    let res: AxiosResponse<string>;
    try {
      res = await this.http.request({ method, url: path, headers: opts.headers, data: opts.body });
    } catch (err) {
      const e = err as { code?: string; message: string };
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(e.code ?? '')) {
        // Self-signed: rks's ephemeral certificate, which no CA file can verify.
        const why =
          e.code === 'DEPTH_ZERO_SELF_SIGNED_CERT'
            ? "rks serves its ephemeral self-signed certificate: it is not initialised yet (rks init), or it cannot log in to Vault as itself (its log says why: another administrator password than init's)"
            : "set --ca-cert / RKS_CA_CERT, or fetch the CA with 'rks ca cert --psk'";
        throw new CliError(`cannot verify rks's TLS certificate (${e.code}): ${why}`, 3);
      }
      // Plain HTTP to rks's HTTPS port: the server hangs up on what is not a TLS handshake.
      const hint = /^http:/.test(this.opts.url) && ['ECONNRESET', 'ERR_BAD_RESPONSE', 'HPE_INVALID_CONSTANT'].includes(e.code ?? '') ? ' (rks serves HTTPS: use https://)' : '';
      throw new CliError(`cannot reach rks at ${this.opts.url}: ${e.code ?? e.message}${hint}`, 3);
    }
    return res;
  }
}

function codeOf(body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

function reason(body: string): string {
  try {
    const parsed = JSON.parse(body) as { errors?: unknown };
    if (Array.isArray(parsed.errors) && parsed.errors.length) return parsed.errors.join('; ');
  } catch {
    /* not JSON */
  }
  return body.slice(0, 200) || 'no reason given';
}
