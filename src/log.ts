import pino, { Logger } from 'pino';

/** Paths pino blanks out in every log line: tokens, passwords and keys never reach a log. */
export const REDACT_PATHS = [
  'req.headers["x-vault-token"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'password',
  '*.password',
  'adminPassword',
  '*.adminPassword',
  'token',
  '*.token',
  'private_key',
  '*.private_key',
  '*.*.private_key',
  'psk',
  '*.psk',
];

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * JSON logs to stdout, written asynchronously: a request never waits for a log write, lines
 * written meanwhile go out together, and pino flushes what is left when the process exits.
 */
export function createLogger(level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  return pino({ ...OPTIONS, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination ?? pino.destination({ dest: 1, sync: false }));
}

const OPTIONS = {
  base: { service: 'rks' },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label: string) => ({ level: label }) },
};

/**
 * The logger of the one line each request gets: rks builds every field of that line itself
 * (method, path without query, status, timing), so there is nothing to redact and the line
 * skips the redaction pass. Same destination and level as `logger`.
 */
export function accessLogger(logger: Logger): Logger {
  return pino({ ...OPTIONS, level: logger.level }, (logger as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym]);
}

/**
 * A request target fit for a log line: the path, and only a marker for the query string,
 * which callers sometimes fill with tokens or passwords (`?token=hvs.…`).
 */
export function safeUrl(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?[redacted]`;
}

/**
 * At most one line per reason and interval: an outage that fails thousands of requests alike
 * writes a line now and then with the number it stood for, not one per request.
 */
export class LogThrottle {
  private readonly seen = new Map<string, { until: number; suppressed: number }>();

  constructor(private readonly intervalMs = 10_000) {}

  warn(logger: Logger, reason: string, fields: Record<string, unknown> = {}): void {
    const now = Date.now();
    const entry = this.seen.get(reason);
    if (entry && now < entry.until) {
      entry.suppressed++;
      return;
    }
    // Reasons are rks's own fixed texts, so the map stays small; cleared anyway if it grows.
    if (this.seen.size > 1000) this.seen.clear();
    this.seen.set(reason, { until: now + this.intervalMs, suppressed: 0 });
    logger.warn({ ...fields, ...(entry?.suppressed ? { alike: entry.suppressed } : {}) }, reason);
  }
}
