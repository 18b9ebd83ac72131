import { kvPath } from '../vault/layout';
import { KvStore, NO_CHANGE } from '../vault/stores';

/** How many new orders an issuer's account may place in a sliding window. */
export interface OrderBudget {
  orders: number;
  windowSeconds: number;
}

/** Let's Encrypt's limit on new orders per account: 300 every 3 hours. */
export const DEFAULT_ORDER_BUDGET: OrderBudget = { orders: 300, windowSeconds: 3 * 3600 };

/** What Vault holds of an issuer's pace (`rks/data/acme/pacing/<issuer>`), shared by every rks instance. */
export interface PacingRecord {
  /** Orders placed, by bucket (its start, seconds since the epoch, as the key). */
  placed: Record<string, number>;
  /** The CA said to wait until then (a 429 or rateLimited on the account): no order before. */
  pausedUntil?: number;
  pauseReason?: string;
  /** The last slot handed to a queued order, to the fraction of a second: the next one queues an interval after it. */
  tail?: number;
}

/** What the operator sees of an issuer's pace. */
export interface PacingView {
  budget: OrderBudget;
  /** Orders placed in the window that ends now. */
  placedInWindow: number;
  /** When the next order may be placed (ISO 8601; now when one may be placed now). */
  nextSlot: string;
  pausedUntil?: string;
  pauseReason?: string;
  /** When the orders queued so far will all have been placed, at this budget (ISO 8601). */
  queueThrough?: string;
}

/** No slot for an order now: it waits in its issuer's queue until `at` (seconds since the epoch). */
export class OrderQueued extends Error {
  constructor(readonly at: number) {
    super(`waiting for a slot of the issuer's order budget (next at ${new Date(at * 1000).toISOString()})`);
  }
}

/** A window is counted in this many buckets: an order is counted a bucket longer at most (never less). */
const BUCKETS = 36;

const bucketOf = (budget: OrderBudget) => Math.max(1, Math.ceil(budget.windowSeconds / BUCKETS));

/** No pause is held longer than a week (a CA's longest limit), no queue runs longer than a year. */
const MAX_PAUSE = 7 * 86400;
const MAX_QUEUE = 366 * 86400;

/**
 * Buckets still inside the window ending at `t` (a bucket counts until its end leaves the window).
 * The record is read as anyone who may write it may have written it: a bucket from the future,
 * or a count that is no count, is left out.
 */
function live(r: PacingRecord | null, budget: OrderBudget, t: number): Array<[number, number]> {
  const size = bucketOf(budget);
  return Object.entries(r?.placed ?? {})
    .map(([k, n]) => [Number(k), Number(n)] as [number, number])
    .filter(([start, n]) => Number.isSafeInteger(start) && Number.isSafeInteger(n) && n > 0 && start <= t && start + size > t - budget.windowSeconds)
    .sort((a, b) => a[0] - b[0]);
}

/** A time the record holds, if it is after `t`: held to `t + max`, to the second after it. */
function ahead(v: unknown, t: number, max: number): number | undefined {
  const n = exactlyAhead(v, t, max);
  return n === undefined ? undefined : Math.ceil(n);
}

function exactlyAhead(v: unknown, t: number, max: number): number | undefined {
  const n = Number(v);
  return Number.isFinite(n) && n > t ? Math.min(n, t + max) : undefined;
}

/** When an order may be placed, at `t` or later, as `r` stands. */
function nextSlot(r: PacingRecord | null, budget: OrderBudget, t: number): number {
  const paused = ahead(r?.pausedUntil, t, MAX_PAUSE) ?? t;
  const buckets = live(r, budget, paused);
  let count = buckets.reduce((s, [, n]) => s + n, 0);
  const size = bucketOf(budget);
  for (const [start, n] of buckets) {
    if (count < budget.orders) break;
    count -= n;
    // Once this bucket's end leaves the window, its orders no longer count.
    if (count < budget.orders) return Math.max(paused, start + size + budget.windowSeconds);
  }
  return paused;
}

/**
 * The pace of new orders at each ACME issuer, shared by every rks instance through Vault: at most
 * `budget.orders` orders in any window of `budget.windowSeconds` (counted in buckets, so an order
 * counts a little longer, never less), none while the CA said to wait, and a queue of slots
 * handed out in turn to the orders that must wait, so that waiting orders come due one at a time.
 */
export class OrderPacing {
  constructor(private readonly kv: KvStore) {}

  /**
   * Takes a slot for an order now; answers 0 when taken, else when the next slot opens (seconds
   * since the epoch).
   */
  async take(token: string, issuer: string, budget: OrderBudget, t: number): Promise<number> {
    let at = 0;
    await this.kv.update<PacingRecord>(kvPath.acmePacing(issuer), token, (r) => {
      at = nextSlot(r, budget, t);
      if (at > t) return NO_CHANGE;
      at = 0;
      const size = bucketOf(budget);
      const bucket = String(Math.floor(t / size) * size);
      const placed = Object.fromEntries(live(r, budget, t).map(([k, n]) => [String(k), n]));
      placed[bucket] = (placed[bucket] ?? 0) + 1;
      return { ...(r ?? {}), placed };
    });
    return at;
  }

  /**
   * A slot for an order that must wait: the first free one after those already handed out (the
   * queue's end), or, for `front`, the next one (a renewal near its certificate's end, or an
   * order whose slot another took). Answers when (seconds since the epoch).
   */
  async queue(token: string, issuer: string, budget: OrderBudget, t: number, front = false): Promise<number> {
    let at = 0;
    await this.kv.update<PacingRecord>(kvPath.acmePacing(issuer), token, (r) => {
      const next = nextSlot(r, budget, t);
      if (front) {
        at = next;
        return NO_CHANGE;
      }
      // Kept to the fraction: a budget of more than one order a second queues more than one a second.
      const interval = budget.windowSeconds / budget.orders;
      const tail = exactlyAhead(r?.tail, t, MAX_QUEUE);
      const slot = tail === undefined ? next : Math.max(next, tail + interval);
      at = Math.ceil(slot);
      return { ...(r ?? { placed: {} }), tail: Math.round(slot * 1000) / 1000 };
    });
    return at;
  }

  /** The CA said to wait (for the whole account): no instance orders before `until`. */
  async pause(token: string, issuer: string, until: number, reason: string): Promise<void> {
    await this.kv.update<PacingRecord>(kvPath.acmePacing(issuer), token, (r) => {
      if (Number(r?.pausedUntil) >= until && Number(r?.pausedUntil) <= until + MAX_PAUSE) return NO_CHANGE;
      return { ...(r ?? { placed: {} }), pausedUntil: until, pauseReason: reason.slice(0, 300) };
    });
  }

  async view(token: string, issuer: string, budget: OrderBudget, t: number): Promise<PacingView> {
    const r = (await this.kv.read<PacingRecord>(kvPath.acmePacing(issuer), token))?.data ?? null;
    const iso = (s: number) => new Date(s * 1000).toISOString();
    const paused = ahead(r?.pausedUntil, t, MAX_PAUSE);
    const tail = ahead(r?.tail, t, MAX_QUEUE);
    return {
      budget,
      placedInWindow: live(r, budget, t).reduce((s, [, n]) => s + n, 0),
      nextSlot: iso(nextSlot(r, budget, t)),
      ...(paused ? { pausedUntil: iso(paused), ...(typeof r!.pauseReason === 'string' ? { pauseReason: r!.pauseReason.slice(0, 300) } : {}) } : {}),
      ...(tail ? { queueThrough: iso(tail) } : {}),
    };
  }
}
