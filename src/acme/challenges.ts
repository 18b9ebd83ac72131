import { BadRequest, Forbidden, NotFound } from '../errors';
import { PREFIX, kvPath } from '../vault/layout';
import type { KvStore, Session, TokenStore } from '../vault/stores';

/** An HTTP-01 challenge in progress: what the CA will fetch from the name's edges. */
export interface PendingChallenge {
  keyAuthorization: string;
  fqdn: string;
  /** ISO 8601: after this the order has given up on it. */
  expiresAt: string;
}

/** Challenges an edge is given at once: orders in flight, far fewer in practice. */
const MAX_LISTED = 1000;

/** ACME tokens are base64url (RFC 8555 §8.1 asks for at least 128 bits). */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;

/**
 * Where rks puts the key authorisations of its orders for the edges to answer HTTP-01 with.
 * A key authorisation is public by design (the CA fetches it over plain HTTP from anyone who
 * asks the name), so any registered node may read any of them: the edges of a name's group,
 * before or after the secret is associated, are the ones the CA reaches.
 */
export class ChallengeBoard {
  constructor(
    private readonly kv: KvStore,
    private readonly tokens: TokenStore,
    private readonly session: Session,
  ) {}

  async publish(token: string, challengeToken: string, c: PendingChallenge): Promise<void> {
    // The token comes from the CA and becomes a Vault path: nothing but base64url gets there.
    if (!TOKEN.test(challengeToken)) throw new Error('the CA sent a challenge token that is not base64url');
    await this.kv.write(kvPath.acmeChallenge(challengeToken), c, token);
  }

  async remove(token: string, challengeToken: string): Promise<void> {
    await this.kv.destroy(kvPath.acmeChallenge(challengeToken), token);
  }

  /** Drops what orders that stopped half-way (an rks killed mid-order) left behind. */
  async sweep(token: string, now = Date.now()): Promise<void> {
    for (const t of await this.kv.list(kvPath.acmeChallenges, token)) {
      const c = await this.kv.read<PendingChallenge>(kvPath.acmeChallenge(t), token);
      if (!c || Date.parse(c.data.expiresAt) < now) await this.remove(token, t);
    }
  }

  /**
   * For an edge: the key authorisation of `challengeToken`, with the caller's node token. Not
   * the name it is for: which customer names are being onboarded is no node's business.
   */
  async answer(nodeToken: string, challengeToken: string): Promise<{ keyAuthorization: string; expiresAt: string }> {
    if (!TOKEN.test(challengeToken)) throw new BadRequest('not an ACME challenge token');
    await this.mustBeNode(nodeToken);
    const c = await this.session.run((t) => this.kv.read<PendingChallenge>(kvPath.acmeChallenge(challengeToken), t));
    if (!c || Date.parse(c.data.expiresAt) < Date.now()) throw new NotFound('no challenge in progress with this token');
    return { keyAuthorization: c.data.keyAuthorization, expiresAt: c.data.expiresAt };
  }

  /** For an edge: every challenge in progress (as many as orders in flight, at most MAX_LISTED). */
  async pending(nodeToken: string): Promise<{ token: string; keyAuthorization: string; expiresAt: string }[]> {
    await this.mustBeNode(nodeToken);
    const now = Date.now();
    return this.session.run(async (t) => {
      const names = (await this.kv.list(kvPath.acmeChallenges, t)).filter((k) => TOKEN.test(k)).slice(0, MAX_LISTED);
      const out = [];
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
