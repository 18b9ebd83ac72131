import { BadRequest, Forbidden, NotFound } from '../errors';
import { PREFIX, kvPath } from '../vault/layout';
import type { KvStore, Session, TokenStore } from '../vault/stores';
import type { ChallengeAnswer, PendingChallenges } from '../sdk/wire';

/** An HTTP-01 challenge in progress: what the CA will fetch from the name's edges. */
export interface PendingChallenge {
  keyAuthorization: string;
  fqdn: string;
  /** ISO 8601: after this the order has given up on it. */
  expiresAt: string;
}

/** Challenges an edge is given at once: orders in flight, far fewer in practice. */
const MAX_LISTED = 1000;

type Listed = PendingChallenges['challenges'][number];

/** ACME tokens are base64url (RFC 8555 §8.1 asks for at least 128 bits). */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;

/**
 * Where rks puts the key authorisations of its orders for the edges to answer HTTP-01 with.
 * A key authorisation is public by design (the CA fetches it over plain HTTP from anyone who
 * asks the name), so any registered node may read any of them: the edges of a name's group,
 * before or after the secret is associated, are the ones the CA reaches.
 */
export class ChallengeBoard {
  private listed?: { serial: number; list: Promise<Listed[]> };

  constructor(
    private readonly kv: KvStore,
    private readonly tokens: TokenStore,
    private readonly session: Session,
  ) {}

  async publish(token: string, challengeToken: string, c: PendingChallenge): Promise<void> {
    // The token comes from the CA and becomes a Vault path: nothing but base64url gets there.
    if (!TOKEN.test(challengeToken)) throw new Error('the CA sent a challenge token that is not base64url');
    await this.kv.write(kvPath.acmeChallenge(challengeToken), c, token);
    await this.changed(token);
  }

  async remove(token: string, challengeToken: string): Promise<void> {
    await this.kv.destroy(kvPath.acmeChallenge(challengeToken), token);
    await this.changed(token);
  }

  /** A new version of the serial: listings made before it are not served again. */
  private async changed(token: string): Promise<void> {
    await this.kv.write(kvPath.acmeChallengesSerial, { at: new Date().toISOString() }, token);
  }

  /** Drops what orders that stopped half-way (an rks killed mid-order) left behind. */
  async sweep(token: string, now = Date.now()): Promise<void> {
    for (const t of (await this.kv.list(kvPath.acmeChallenges, token)).filter((k) => TOKEN.test(k))) {
      const c = await this.kv.read<PendingChallenge>(kvPath.acmeChallenge(t), token);
      if (!c || Date.parse(c.data.expiresAt) < now) await this.remove(token, t);
    }
  }

  /**
   * For an edge: the key authorisation of `challengeToken`, with the caller's node token. Not
   * the name it is for: which customer names are being onboarded is no node's business.
   */
  async answer(nodeToken: string, challengeToken: string): Promise<ChallengeAnswer> {
    if (!TOKEN.test(challengeToken)) throw new BadRequest('not an ACME challenge token');
    await this.mustBeNode(nodeToken);
    const c = await this.session.run((t) => this.kv.read<PendingChallenge>(kvPath.acmeChallenge(challengeToken), t));
    if (!c || Date.parse(c.data.expiresAt) < Date.now()) throw new NotFound('no challenge in progress with this token');
    return { keyAuthorization: c.data.keyAuthorization, expiresAt: c.data.expiresAt };
  }

  /**
   * For an edge: every challenge in progress (as many as orders in flight, at most MAX_LISTED).
   * Strangers can make every edge ask (made-up tokens on port 80), so a listing is kept (data,
   * read by rks) and served again while the challenges' serial names the same version: one
   * read a request, whatever the number of challenges. A change (on any rks instance) is seen
   * by the next listing, before the CA is told to fetch.
   */
  async pending(nodeToken: string): Promise<Listed[]> {
    await this.mustBeNode(nodeToken);
    const serial = (await this.session.run((t) => this.kv.read(kvPath.acmeChallengesSerial, t)))?.version ?? 0;
    // Expired ones drop out of a kept listing too.
    const current = (list: Listed[]) => list.filter((c) => Date.parse(c.expiresAt) >= Date.now());
    if (this.listed?.serial === serial) return current(await this.listed.list);
    const list = this.list();
    const entry = { serial, list };
    this.listed = entry;
    list.catch(() => this.listed === entry && (this.listed = undefined));
    return current(await list);
  }

  private list(): Promise<Listed[]> {
    const now = Date.now();
    return this.session.run(async (t) => {
      const names = (await this.kv.list(kvPath.acmeChallenges, t)).filter((k) => TOKEN.test(k)).slice(0, MAX_LISTED);
      const out: Listed[] = [];
      for (const name of names) {
        const c = await this.kv.read<PendingChallenge>(kvPath.acmeChallenge(name), t);
        if (c && Date.parse(c.data.expiresAt) >= now) out.push({ token: name, keyAuthorization: c.data.keyAuthorization, expiresAt: c.data.expiresAt });
      }
      return out;
    });
  }

  private async mustBeNode(nodeToken: string): Promise<void> {
    const self = await this.tokens.lookupSelf(nodeToken);
    if (!self.policies.some((p) => p.startsWith(`${PREFIX}node_`))) throw new Forbidden('a node token is required');
  }
}
