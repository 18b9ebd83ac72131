import { Tally } from '../../src/edge/tally';

/** A flood of the same trouble is said once a period, with how many and a few examples. */
describe('Tally', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('says the first at once, then what came since once a period at most, with at most a few examples', () => {
    const said: [number, string[]][] = [];
    const t = new Tally((n, examples) => said.push([n, examples]), 60_000, 3);
    t.note('a.example.com');
    expect(said).toEqual([[1, ['a.example.com']]]);
    for (let i = 0; i < 10_000; i++) t.note(`n${i % 7}.example.com`);
    t.note();
    expect(said).toHaveLength(1);
    jest.advanceTimersByTime(60_000);
    expect(said[1]).toEqual([10_001, ['n0.example.com', 'n1.example.com', 'n2.example.com']]);
    // Nothing since: nothing said, and the next one is said at once again.
    jest.advanceTimersByTime(120_000);
    expect(said).toHaveLength(2);
    t.note('b.example.com');
    expect(said[2]).toEqual([1, ['b.example.com']]);
  });
});
