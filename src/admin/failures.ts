/**
 * Failed attempts per key, counted the way Vault's user lockout counts them: the count grows
 * with each failure and starts again once `resetMs` passed without one (or after a success).
 * At `limit` the key is blocked until then. Memory is bounded: when `maxKeys` keys are held,
 * expired and unblocked keys make room first; then, if `whenFull` is 'refuse', a new key is
 * refused rather than a block forgotten, and if it is 'forget', the oldest block goes.
 */
export class FailureCounter {
  /** Insertion order is the order of last failure: the first entry is the oldest. */
  private readonly entries = new Map<string, { count: number; last: number }>();

  constructor(
    readonly limit: number,
    readonly resetMs: number,
    private readonly maxKeys = 10_000,
    private readonly whenFull: 'refuse' | 'forget' = 'refuse',
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `key` may be tried again (at `limit` failures, or another bound); 0 when it may now. */
  blockedFor(key: string, limit = this.limit): number {
    const e = this.live(key);
    if (e) return e.count >= limit ? this.remaining(e) : 0;
    if (this.entries.size < this.maxKeys || this.whenFull === 'forget') return 0;
    const now = this.now();
    for (const x of this.entries.values()) if (x.count < this.limit || now - x.last >= this.resetMs) return 0;
    return this.remaining(this.entries.values().next().value!);
  }

  /** Takes back one failure counted ahead of an attempt that succeeded. */
  undo(key: string): void {
    const e = this.live(key);
    if (e && --e.count <= 0) this.entries.delete(key);
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
      if (e.count < this.limit || this.whenFull === 'forget') {
        this.entries.delete(key);
        return true;
      }
    }
    return false;
  }
}
