import { OrderPacing } from '../../src/acme/pacing';
import { MemoryKv } from '../support/memory-vault';

const budget = { orders: 5, windowSeconds: 3600 };

describe('OrderPacing (in memory)', () => {
  it('never lets more orders than the budget into any window, whoever takes them, and says when the next slot opens', async () => {
    const pacing = new OrderPacing(new MemoryKv());
    const t0 = 1_800_000_000;
    const placed: number[] = [];
    // Takers at random moments over ten hours, several at once.
    let t = t0;
    for (let i = 0; i < 400; i++) {
      t += Math.floor(Math.random() * 120);
      const at = t;
      const answers = await Promise.all([1, 2, 3].map(() => pacing.take('root', 'le', budget, at)));
      for (const wait of answers) {
        if (wait === 0) placed.push(at);
        else expect(wait).toBeGreaterThan(at);
      }
    }
    // Any window of an hour holds at most five orders.
    for (const start of placed) expect(placed.filter((p) => p >= start && p < start + budget.windowSeconds).length).toBeLessThanOrEqual(budget.orders);
    // And the budget is used: about five an hour (buckets count an order a little longer, never less).
    expect(placed.length).toBeGreaterThanOrEqual(Math.floor(((t - t0) / 3600) * 4));
  });

  it('hands queued orders slots one interval apart, the front to renewals near their end; a pause the CA asked for holds everyone', async () => {
    const pacing = new OrderPacing(new MemoryKv());
    const t = 1_800_000_000;
    for (let i = 0; i < 5; i++) expect(await pacing.take('root', 'le', budget, t)).toBe(0);
    const next = await pacing.take('root', 'le', budget, t);
    expect(next).toBeGreaterThan(t + 3600 - 1);
    const slots = [];
    for (let i = 0; i < 3; i++) slots.push(await pacing.queue('root', 'le', budget, t));
    expect(slots[0]).toBe(next);
    expect(slots[1]! - slots[0]!).toBe(720);
    expect(slots[2]! - slots[1]!).toBe(720);
    // A renewal near its end goes first, without moving the queue's end.
    expect(await pacing.queue('root', 'le', budget, t, true)).toBe(next);
    expect(await pacing.queue('root', 'le', budget, t)).toBe(slots[2]! + 720);
    const view = await pacing.view('root', 'le', budget, t);
    expect(view).toMatchObject({ placedInWindow: 5, nextSlot: new Date(next * 1000).toISOString(), queueThrough: new Date((slots[2]! + 720) * 1000).toISOString() });

    await pacing.pause('root', 'le', t + 7200, 'too many new orders recently');
    expect(await pacing.take('root', 'le', budget, t + 3700)).toBe(t + 7200);
    expect(await pacing.view('root', 'le', budget, t + 3700)).toMatchObject({ pausedUntil: new Date((t + 7200) * 1000).toISOString(), pauseReason: 'too many new orders recently' });
    expect(await pacing.take('root', 'le', budget, t + 7200)).toBe(0);
    // Other issuers are not held.
    expect(await pacing.take('root', 'zerossl', budget, t)).toBe(0);
  });

  it('queues at the budget\'s pace when it allows more than one order a second', async () => {
    const fast = { orders: 600, windowSeconds: 60 };
    const pacing = new OrderPacing(new MemoryKv());
    const t = 1_800_000_000;
    for (let i = 0; i < 600; i++) expect(await pacing.take('root', 'pebble', fast, t)).toBe(0);
    const slots: number[] = [];
    for (let i = 0; i < 300; i++) slots.push(await pacing.queue('root', 'pebble', fast, t));
    // 300 orders ten a second: through in 30 s, not 300.
    expect(slots[299]! - slots[0]!).toBeGreaterThanOrEqual(29);
    expect(slots[299]! - slots[0]!).toBeLessThanOrEqual(31);
    for (let i = 1; i < slots.length; i++) expect(slots[i]!).toBeGreaterThanOrEqual(slots[i - 1]!);
    const perSecond = new Map<number, number>();
    for (const s of slots) perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(11);
  });

  it('reads its record as anyone who may write it may have written it: no pause beyond a week, no queue beyond a year, no bucket from the future', async () => {
    const kv = new MemoryKv();
    const pacing = new OrderPacing(kv);
    const t = 1_800_000_000;
    await kv.write('acme/pacing/le', { placed: { [String(t + 10 * 3600)]: 1_000_000, junk: 'x' }, pausedUntil: 1e14, tail: 1e14, pauseReason: 'x'.repeat(10_000) }, 'root');
    const view = await pacing.view('root', 'le', budget, t);
    expect(view).toMatchObject({ placedInWindow: 0, pausedUntil: new Date((t + 7 * 86400) * 1000).toISOString(), queueThrough: new Date((t + 366 * 86400) * 1000).toISOString() });
    expect(view.pauseReason!.length).toBeLessThanOrEqual(300);
    expect(await pacing.take('root', 'le', budget, t)).toBe(t + 7 * 86400);
    expect(await pacing.queue('root', 'le', budget, t)).toBeLessThanOrEqual(t + 366 * 86400 + 720);
  });
});
