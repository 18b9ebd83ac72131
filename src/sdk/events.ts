/** Events: `registered`, `renewed`, `fetched`, `expired`, `refused`, `error` (see RksNode). */
export interface RksNodeEvents {
  registered: [{ ttl: number }];
  renewed: [{ ttl: number }];
  fetched: [{ name: string; ttl: number; ms: number }];
  expired: [{ name: string }];
  refused: [{ name: string; status: number }];
  /** A name this node may not serve was asked for (its handshake fails): `name` when it is a host name at all. */
  unserved: [{ name?: string }];
  /** Keys dropped because rks no longer lets this node have them. */
  revoked: [{ names: string[]; reason: string }];
  /** rks told a new list of the names this node may read (not sent when it answered "unchanged"). */
  allowed: [{ names: string[] }];
  /**
   * Names this node may no longer serve, whether or not it held their keys (`null`: every name,
   * the node token died). Whatever serves TLS with the node's keys drops what it holds of them.
   */
  withdrawn: [{ names: string[] | null }];
  /**
   * Keys rks replaced (a push over the name, an update, a rollback, a renewal), fetched anew
   * and swapped in: new handshakes get the new key. Whatever serves TLS with the node's keys
   * takes the new one.
   */
  replaced: [{ names: string[] }];
  error: [Error];
}

/**
 * Tells the node's listeners. A failure (`error`) is told only to whoever listens: nobody
 * listening is no reason to end the program, and an edge whose rks restarts keeps serving.
 */
export type Tell = <K extends keyof RksNodeEvents>(event: K, ...args: RksNodeEvents[K]) => void;
