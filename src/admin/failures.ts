/**
 * Failed attempts per key, counted the way Vault's user lockout counts them: the count grows
 * with each failure and starts again once `resetMs` passed without one (or after a success).
 * At `limit` the key is blocked until then. Memory is bounded: when `maxKeys` keys are held,
 * expired and unblocked keys make room first; a table full of blocked keys refuses new ones
 * (fail closed) rather than forgetting a block.
 */
export class FailureCounter {
  /** Insertion order is the order of last failure: the first entry is the oldest. */
  private readonly entries = new Map<string, { count: number; last: number }>();

  constructor(
    readonly limit: number,
    readonly resetMs: number,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `key` may be tried again; 0 when it may now. */
  blockedFor(key: string): number {
    const e = this.live(key);
    if (e) return e.count >= this.limit ? this.remaining(e) : 0;
    if (this.entries.size < this.maxKeys || this.makeRoom()) return 0;
    return this.remaining(this.entries.values().next().value!);
  }

  fail(key: string): void {
    const e = this.live(key) ?? { count: 0, last: 0 };
    this.entries.delete(key);
    if (this.entries.size >= this.maxKeys && !this.makeRoom()) return;
    e.count++;
    e.last = this.now();
    this.entries.set(key, e);
  }

  succeed(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  private live(key: string): { count: number; last: number } | undefined {
    const e = this.entries.get(key);
    if (e && this.now() - e.last >= this.resetMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private remaining(e: { last: number }): number {
    return Math.max(1, Math.ceil((e.last + this.resetMs - this.now()) / 1000));
  }

  /** Drops expired keys, else the oldest unblocked one; false when every key is blocked. */
  private makeRoom(): boolean {
    const now = this.now();
    let freed = false;
    for (const [key, e] of this.entries) {
      if (now - e.last < this.resetMs) break;
      this.entries.delete(key);
      freed = true;
    }
    if (freed) return true;
    for (const [key, e] of this.entries) {
      if (e.count < this.limit) {
        this.entries.delete(key);
        return true;
      }
    }
    return false;
  }
}
