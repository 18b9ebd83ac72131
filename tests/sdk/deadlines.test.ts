import { Deadlines } from '../../src/sdk/deadlines';

/** One timer for every held name's deadline: each fires once its time came, in time order. */
describe('Deadlines', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('fires each name once its time has come, earliest first, and not before', () => {
    const fired: [string, number][] = [];
    const d = new Deadlines((name, at) => fired.push([name, at]));
    const now = Date.now();
    const times = Array.from({ length: 2000 }, (_, i) => now + ((i * 7919) % 5000) + 1);
    times.forEach((at, i) => d.add(`n${i}`, at));
    jest.advanceTimersByTime(2500);
    expect(fired.every(([, at]) => at <= now + 2500)).toBe(true);
    expect(fired.length).toBe(times.filter((at) => at <= now + 2500).length);
    jest.advanceTimersByTime(2600);
    expect(fired.length).toBe(2000);
    expect(fired.map(([, at]) => at)).toEqual([...times].sort((a, b) => a - b));
    expect(d.size).toBe(0);
  });

  it('wakes for an earlier deadline added after a later one', () => {
    const fired: string[] = [];
    const d = new Deadlines((name) => fired.push(name));
    d.add('late', Date.now() + 60_000);
    d.add('soon', Date.now() + 10);
    jest.advanceTimersByTime(20);
    expect(fired).toEqual(['soon']);
  });

  it('hands a name given two times both (its owner knows which it holds), and nothing after clear', () => {
    const fired: [string, number][] = [];
    const d = new Deadlines((name, at) => fired.push([name, at]));
    const t = Date.now();
    d.add('a', t + 100);
    d.add('a', t + 50);
    jest.advanceTimersByTime(200);
    expect(fired).toEqual([['a', t + 50], ['a', t + 100]]);
    d.add('b', Date.now() + 10);
    d.clear();
    jest.advanceTimersByTime(100);
    expect(fired).toHaveLength(2);
  });

  it('waits beyond what one timer can (about 24.8 days)', () => {
    const fired: string[] = [];
    const d = new Deadlines((name) => fired.push(name));
    d.add('far', Date.now() + 40 * 86400_000);
    jest.advanceTimersByTime(30 * 86400_000);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(11 * 86400_000);
    expect(fired).toEqual(['far']);
  });

  it('takes no deadline that never comes (NaN, Infinity), and goes on with the others', () => {
    const fired: string[] = [];
    const d = new Deadlines((name) => fired.push(name));
    d.add('nan', NaN);
    d.add('never', Infinity);
    d.add('soon', Date.now() + 10);
    jest.advanceTimersByTime(20);
    expect(fired).toEqual(['soon']);
    expect(d.size).toBe(0);
  });

  it('keeps only the entries its owner still holds', () => {
    const fired: string[] = [];
    const d = new Deadlines((name) => fired.push(name));
    const t = Date.now();
    for (let i = 0; i < 100; i++) d.add(`n${i}`, t + 1000 + i);
    d.keep((name) => Number(name.slice(1)) % 10 === 0);
    expect(d.size).toBe(10);
    jest.advanceTimersByTime(2000);
    expect(fired).toEqual(Array.from({ length: 10 }, (_, i) => `n${i * 10}`));
  });
});
