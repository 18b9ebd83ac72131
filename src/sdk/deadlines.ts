/** Timers cannot wait longer than this (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * When each name's time comes, under one timer: a Node timer weighs some 200 bytes, and an edge
 * that hands 100,000 names to HAProxy keeps one deadline per name. A min-heap of (time, name);
 * a name given a new time leaves its old entry behind, which `fire`'s owner recognises as stale
 * (it is not the time it holds any more) when it comes.
 */
export class Deadlines {
  private readonly times: number[] = [];
  private readonly names: string[] = [];
  private timer?: NodeJS.Timeout;
  private armedAt = Infinity;

  /** `fire(name, at)` once `at` (ms since the epoch) has come. */
  constructor(private readonly fire: (name: string, at: number) => void) {}

  get size(): number {
    return this.times.length;
  }

  add(name: string, at: number): void {
    if (!Number.isFinite(at)) return; // no time ever comes; a NaN would stall the heap
    let i = this.times.length;
    this.times.push(at);
    this.names.push(name);
    // Up the heap.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.times[parent]! <= at) break;
      this.swap(i, parent);
      i = parent;
    }
    if (at < this.armedAt) this.arm();
  }

  /** Keeps only the entries `current` says are still wanted (its owner's deadlines as they stand). */
  keep(current: (name: string, at: number) => boolean): void {
    const entries = this.times.map((at, i) => [at, this.names[i]!] as const).filter(([at, name]) => current(name, at));
    this.times.length = 0;
    this.names.length = 0;
    clearTimeout(this.timer);
    this.armedAt = Infinity;
    for (const [at, name] of entries) this.add(name, at);
  }

  clear(): void {
    this.times.length = 0;
    this.names.length = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = this.times.length ? this.times[0]! : Infinity;
    if (this.armedAt === Infinity) return;
    this.timer = setTimeout(() => this.run(), Math.min(Math.max(this.armedAt - Date.now(), 0), MAX_TIMER_MS));
    this.timer.unref();
  }

  private run(): void {
    const now = Date.now();
    while (this.times.length && this.times[0]! <= now) {
      const at = this.times[0]!;
      const name = this.names[0]!;
      this.pop();
      this.fire(name, at);
    }
    this.arm();
  }

  private pop(): void {
    const last = this.times.length - 1;
    this.swap(0, last);
    this.times.pop();
    this.names.pop();
    // Down the heap.
    for (let i = 0; ; ) {
      const [l, r] = [2 * i + 1, 2 * i + 2];
      let min = i;
      if (l < this.times.length && this.times[l]! < this.times[min]!) min = l;
      if (r < this.times.length && this.times[r]! < this.times[min]!) min = r;
      if (min === i) return;
      this.swap(i, min);
      i = min;
    }
  }

  private swap(a: number, b: number): void {
    const t = this.times[a]!;
    this.times[a] = this.times[b]!;
    this.times[b] = t;
    const n = this.names[a]!;
    this.names[a] = this.names[b]!;
    this.names[b] = n;
  }
}
