import { randomBytes, timingSafeEqual } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import express, { NextFunction, Request, Response } from 'express';

/**
 * A group manager stand-in over HTTPS, with the endpoints such managers expose in existing
 * RKS setups. Node management and /mock/* are unauthenticated: this is a test tool.
 */
export interface MockOptions {
  cert: string | Buffer;
  key: string | Buffer;
  clientId: string;
  clientSecret: string;
  port?: number;
  host?: string;
  allowed?: string[];
}

/** Failures to simulate, set through `behaviour` or `PUT /mock/behaviour`. */
export interface Behaviour {
  /** Answer every callback with this status instead of deciding. */
  callbackStatus?: number;
  /** Answer every token request with this status. */
  oauthStatus?: number;
  /** Wait this long before answering a callback. */
  delayMs?: number;
  /** Redirect every callback to this URL. */
  redirectTo?: string;
  /** Answer 200 at once but send the body one byte every this many milliseconds (a trickle). */
  trickleMs?: number;
  /** Answer 200 with a body of this many bytes. */
  answerBytes?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, unknown>;
  authorization?: string;
}

export interface MockCallbackServer {
  /** Base URL, e.g. https://127.0.0.1:8443 */
  url: string;
  oauthURL: string;
  callbackURL: string;
  allowed: Set<string>;
  behaviour: Behaviour;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startMockCallbackServer(opts: MockOptions): Promise<MockCallbackServer> {
  const allowed = new Set(opts.allowed ?? []);
  const issued = new Set<string>();
  const behaviour: Behaviour = {};
  const requests: RecordedRequest[] = [];
  const app = express();
  app.disable('x-powered-by');
  app.use((req, _res, next) => {
    requests.push({ method: req.method, path: req.path, query: { ...req.query }, authorization: req.headers.authorization });
    next();
  });
  app.use(express.json());
  app.use(express.urlencoded({ extended: false }));

  app.post('/api/identity/oauth/token', (req, res) => {
    if (behaviour.oauthStatus) return void res.status(behaviour.oauthStatus).json({ error: 'simulated' });
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [id, secret] = basic ? Buffer.from(basic, 'base64').toString().split(/:(.*)/s) : [];
    const q = req.query as Record<string, string>;
    const ok =
      id !== undefined &&
      same(id, opts.clientId) &&
      same(secret ?? '', opts.clientSecret) &&
      q.grant_type === 'client_credentials' &&
      same(String(q.client_id ?? ''), opts.clientId) &&
      same(String(q.client_secret ?? ''), opts.clientSecret);
    if (!ok) return void res.status(401).json({ error: 'invalid_client' });
    const token = randomBytes(24).toString('base64url');
    issued.add(token);
    res.json({ access_token: token, token_type: 'Bearer', expires_in: 3600 });
  });

  const bearer = (req: Request, res: Response, next: NextFunction) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !issued.has(token)) return void res.status(401).json({ error: 'invalid_token' });
    next();
  };

  app.get('/callback/nodes', (_req, res) => {
    res.json([...allowed].sort());
  });
  app.get('/callback/nodes/:id', async (req, res, next) => {
    if (behaviour.delayMs) await new Promise((r) => setTimeout(r, behaviour.delayMs));
    if (behaviour.redirectTo) return void res.redirect(302, `${behaviour.redirectTo.replace(/\/$/, '')}/${req.params.id}`);
    if (behaviour.callbackStatus) return void res.status(behaviour.callbackStatus).json({ error: 'simulated' });
    if (behaviour.answerBytes) return void res.status(200).type('text/plain').send('x'.repeat(behaviour.answerBytes));
    if (behaviour.trickleMs) {
      res.status(200).type('application/json').flushHeaders();
      const body = JSON.stringify({ entityId: req.params.id, padding: 'x'.repeat(100) });
      let i = 0;
      const timer = setInterval(() => {
        if (i >= body.length || res.destroyed) {
          clearInterval(timer);
          return void res.end();
        }
        res.write(body[i++]);
      }, behaviour.trickleMs);
      return;
    }
    next();
  }, bearer, (req, res) => {
    const id = String(req.params.id);
    if (allowed.has(id)) res.json({ entityId: id });
    else res.status(403).json({ error: 'unknown node' });
  });
  const allow = (req: Request, res: Response) => {
    allowed.add(String(req.params.id));
    res.status(204).end();
  };
  app.put('/callback/nodes/:id', allow);
  app.post('/callback/nodes/:id', allow);
  app.delete('/callback/nodes/:id', (req, res) => {
    allowed.delete(String(req.params.id));
    res.status(204).end();
  });

  app.put('/mock/behaviour', (req, res) => {
    for (const k of Object.keys(behaviour) as (keyof Behaviour)[]) delete behaviour[k];
    Object.assign(behaviour, req.body ?? {});
    res.json(behaviour);
  });

  const server = https.createServer({ cert: opts.cert, key: opts.key }, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const url = `https://${opts.host === '0.0.0.0' || !opts.host ? '127.0.0.1' : opts.host}:${port}`;
  return {
    url,
    oauthURL: `${url}/api/identity/oauth/token`,
    callbackURL: `${url}/callback/nodes`,
    allowed,
    behaviour,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
