import { handOffMs } from '../../src/sdk/keys';

/** Keys handed on (HAProxy) are fetched again before their TTL ends, and never all at once. */
describe('handOffMs', () => {
  const TTL = 3600;

  it('fetches a key again before its TTL ends, a loaded one sooner or later over most of it', () => {
    for (let i = 0; i < 1000; i++) {
      const first = handOffMs(TTL, false);
      const again = handOffMs(TTL, true);
      expect(first).toBeGreaterThanOrEqual(0.05 * TTL * 1000);
      expect(first).toBeLessThan(0.75 * TTL * 1000);
      expect(again).toBeGreaterThanOrEqual(0.72 * TTL * 1000);
      expect(again).toBeLessThan(0.78 * TTL * 1000);
    }
  });

  it('keeps the rate of 100,000 names loaded at once flat: no 10 s over 1.5 × the average, for four TTLs', () => {
    const windowMs = 10_000;
    const span = 4 * TTL * 1000;
    const counts = new Array<number>(Math.ceil(span / windowMs)).fill(0);
    for (let n = 0; n < 100_000; n++) {
      for (let t = handOffMs(TTL, false); t < span; t += handOffMs(TTL, true)) counts[Math.floor(t / windowMs)]!++;
    }
    // From the first TTL on: before it, the names are still being loaded.
    const steady = counts.slice(Math.ceil((0.75 * TTL * 1000) / windowMs));
    const average = steady.reduce((a, b) => a + b, 0) / steady.length;
    expect(Math.max(...steady)).toBeLessThanOrEqual(1.5 * average);
  });
});
