import { createHash } from 'node:crypto';
import { isDenied } from '../vault/client';
import { nodePolicyName, tokenOrigin } from '../vault/layout';
import type { TokenStore } from '../vault/stores';

/** Tokens remembered at once (the oldest forgotten first). */
const REMEMBERED = 100_000;
const REMEMBER_MS = 3600_000;

/**
 * Whose token reads a secret: a node's (then it reads its group's copy) or anyone else's. Learnt
 * with one token lookup and remembered for an hour, so a node's read costs Vault one call: a
 * token's role, which says its group, never changes, and a token revoked meanwhile is refused
 * by Vault at the read itself. Tokens are remembered by their hash only.
 */
export class Readers {
  private readonly known = new Map<string, { group: Promise<string | null>; until: number }>();

  constructor(private readonly tokens: Pick<TokenStore, 'lookupSelf'>) {}

  /** The group of a node token, or null for any other token. */
  groupOf(token: string): Promise<string | null> {
    const key = createHash('sha256').update(token).digest('base64url');
    const held = this.known.get(key);
    if (held && held.until > Date.now()) return held.group;
    const group = this.tokens.lookupSelf(token).then(
      (self) => {
        const origin = tokenOrigin(self.path);
        return origin?.nodeId !== undefined && self.policies.includes(nodePolicyName(origin.group)) ? origin.group : null;
      },
      (err) => {
        // Not allowed to look itself up (a dead token, or one of some policy of its own): no node's.
        if (isDenied(err)) return null;
        throw err;
      },
    );
    if (this.known.size >= REMEMBERED) this.known.delete(this.known.keys().next().value!);
    this.known.set(key, { group, until: Date.now() + REMEMBER_MS });
    // A lookup that failed (Vault away) is not remembered.
    group.catch(() => this.known.get(key)?.group === group && this.known.delete(key));
    return group;
  }
}
