import type http from 'node:http';
import { HttpError } from './transport';
import type { ChallengeAnswer, PendingChallenges } from './wire';

const ACME_TOKEN = /^[A-Za-z0-9_-]{16,128}$/;
const ACME_PATH = /^\/\.well-known\/acme-challenge\/([^/]+)$/;
const MAX_CHALLENGE_FETCHES = 8;
/** Listings of the challenges in progress start at most this often. */
const CHALLENGE_LIST_EVERY_MS = 1000;
/** Answers (and recent misses) remembered at once. */
const MAX_REMEMBERED = 1024;

/**
 * The ACME HTTP-01 answers an edge serves for the certificates rks orders for its names:
 * asked of rks, remembered until their challenge ends, and never more than a request a second
 * for all the made-up tokens strangers knock with.
 */
export class ChallengeAnswers {
  /** Answers (and recent misses), each until its challenge ends. */
  private readonly challenges = new Map<string, { answer: string | null; until: number }>();
  private readonly fetches = new Map<string, Promise<string | null>>();
  /** The last listing of the challenges in progress: when it leaves (or left) for rks. */
  private list?: { at: number; sent: boolean; answers: Promise<Map<string, string> | null> };
  /** rks cannot list challenges (an older one): tokens are asked for one by one. */
  private blind = false;

  /** `get(path)`: a node's GET to rks, with its token. */
  constructor(private readonly get: <T>(path: string) => Promise<T>) {}

  /** The key authorisation for `token`, or null when no order waits on it. */
  async answer(token: string): Promise<string | null> {
    if (!ACME_TOKEN.test(token)) return null;
    const held = this.challenges.get(token);
    if (held && held.until > Date.now()) return held.answer;
    if (!this.blind) {
      const answers = await this.listedFromNow();
      if (answers) return answers.get(token) ?? null;
    }
    let pending = this.fetches.get(token);
    // Anyone can knock on port 80 with made-up tokens: at most a few questions to rks at once.
    if (!pending && this.fetches.size >= MAX_CHALLENGE_FETCHES) return null;
    if (!pending) {
      pending = this.fetch(token).finally(() => this.fetches.delete(token));
      this.fetches.set(token, pending);
    }
    return pending;
  }

  /**
   * A request listener for the edge's plain-HTTP port (80, where ACME CAs validate):
   * answers `/.well-known/acme-challenge/<token>` and hands every other request to `next`
   * (404 without one).
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, next?: () => void): void {
    const token = ACME_PATH.exec((req.url ?? '').split('?')[0])?.[1];
    if (!token || (req.method !== 'GET' && req.method !== 'HEAD')) {
      if (next) return next();
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    this.answer(token).then(
      (answer) => {
        if (answer === null) res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('no such challenge\n');
        else res.writeHead(200, { 'Content-Type': 'text/plain' }).end(answer);
      },
      () => res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '2' }).end('rks unreachable\n'),
    );
  }

  clear(): void {
    this.challenges.clear();
    this.list = undefined;
  }

  /**
   * Every challenge in progress, from a listing sent after this call: a token unknown a moment
   * ago (the CA fetches right after rks published it) is looked for afresh. Listings start at
   * most once a second, shared by every request waiting for one not yet sent, so a stranger's
   * made-up tokens cost rks at most one request a second, and the CA's own fetch waits at most
   * about that long. Null when rks cannot list them.
   */
  private listedFromNow(): Promise<Map<string, string> | null> {
    const last = this.list;
    // Sent already: it may have left before the caller's token was published.
    if (last && !last.sent) return last.answers;
    const at = Math.max(Date.now(), (last?.at ?? 0) + CHALLENGE_LIST_EVERY_MS);
    const list: NonNullable<typeof this.list> = { at, sent: false, answers: Promise.resolve(null) };
    list.answers = new Promise<void>((r) => setTimeout(r, Math.max(0, at - Date.now())).unref()).then(() => {
      // Timers may fire early by Date.now()'s clock: the next listing counts from when this one left.
      Object.assign(list, { at: Date.now(), sent: true });
      return this.listAll();
    });
    this.list = list;
    return list.answers;
  }

  private async listAll(): Promise<Map<string, string> | null> {
    try {
      const body = await this.get<PendingChallenges>('/rks/v1/acme/http-01');
      const answers = new Map<string, string>();
      for (const c of body.challenges) {
        answers.set(c.token, c.keyAuthorization);
        this.remember(c.token, c.keyAuthorization, Math.min(Date.parse(c.expiresAt) || 0, Date.now() + 3600_000));
      }
      return answers;
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) {
        this.blind = true;
        return null;
      }
      throw err;
    }
  }

  private async fetch(token: string): Promise<string | null> {
    let answer: string | null = null;
    let until = Date.now() + 5000; // a miss is remembered briefly: strangers may knock here
    try {
      const body = await this.get<ChallengeAnswer>(`/rks/v1/acme/http-01/${token}`);
      answer = body.keyAuthorization;
      until = Math.min(Date.parse(body.expiresAt) || 0, Date.now() + 3600_000);
    } catch (err) {
      if (!(err instanceof HttpError && err.code === 'not_found')) throw err;
    }
    this.remember(token, answer, until);
    return answer;
  }

  private remember(token: string, answer: string | null, until: number): void {
    if (this.challenges.size >= MAX_REMEMBERED) this.challenges.delete(this.challenges.keys().next().value!);
    this.challenges.set(token, { answer, until });
  }
}
