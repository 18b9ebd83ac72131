import { FailureCounter } from '../../src/admin/failures';

describe('FailureCounter', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('blocks a key at the limit until the reset period passed without a failure, and says for how long', () => {
    const c = new FailureCounter(3, 60_000, 100, 'refuse', clock);
    for (let i = 0; i < 2; i++) c.fail('a');
    expect(c.blockedFor('a')).toBe(0);
    c.fail('a');
    expect(c.blockedFor('a')).toBe(60);
    now += 45_000;
    expect(c.blockedFor('a')).toBe(15);
    now += 15_000;
    expect(c.blockedFor('a')).toBe(0);
    c.fail('a');
    expect(c.blockedFor('a')).toBe(0);
  });

  it('counts like Vault: a failure within the reset period extends the count, a quiet period starts it again', () => {
    const c = new FailureCounter(3, 60_000, 100, 'refuse', clock);
    c.fail('a');
    now += 50_000;
    c.fail('a');
    now += 50_000;
    c.fail('a');
    expect(c.blockedFor('a')).toBe(60);
    const d = new FailureCounter(3, 60_000, 100, 'refuse', clock);
    d.fail('b');
    d.fail('b');
    now += 60_000;
    d.fail('b');
    expect(d.blockedFor('b')).toBe(0);
  });

  it('a success forgets the key; other keys are independent', () => {
    const c = new FailureCounter(2, 60_000, 100, 'refuse', clock);
    c.fail('a');
    c.fail('a');
    c.fail('b');
    expect(c.blockedFor('a')).toBeGreaterThan(0);
    expect(c.blockedFor('b')).toBe(0);
    c.succeed('a');
    expect(c.blockedFor('a')).toBe(0);
  });

  it('holds at most maxKeys: expired and unblocked keys make room, blocks are never forgotten', () => {
    const c = new FailureCounter(2, 60_000, 3, 'refuse', clock);
    c.fail('blocked');
    c.fail('blocked');
    c.fail('x');
    c.fail('y');
    c.fail('z');
    expect(c.size).toBe(3);
    expect(c.blockedFor('blocked')).toBe(60);
    // Every key blocked: a new key is refused (fail closed) rather than evicting a block.
    const full = new FailureCounter(1, 60_000, 2, 'refuse', clock);
    full.fail('p');
    full.fail('q');
    expect(full.blockedFor('new')).toBe(60);
    full.fail('new');
    expect(full.size).toBe(2);
    now += 60_000;
    expect(full.blockedFor('new')).toBe(0);
    full.fail('new');
    expect(full.size).toBe(1);
  });
});

describe('FailureCounter, forgetting when full', () => {
  it("drops the oldest block rather than refusing a new key ('forget')", () => {
    let now = 0;
    const c = new FailureCounter(1, 60_000, 2, 'forget', () => now);
    c.fail('p');
    now += 1;
    c.fail('q');
    expect(c.blockedFor('new')).toBe(0);
    c.fail('new');
    expect(c.blockedFor('p')).toBe(0);
    expect(c.blockedFor('q')).toBe(60);
    expect(c.blockedFor('new')).toBe(60);
  });

  it('undo takes back a failure counted ahead of time', () => {
    const c = new FailureCounter(2, 60_000, 10, 'refuse', () => 0);
    c.fail('a');
    c.fail('a');
    expect(c.blockedFor('a')).toBe(60);
    c.undo('a');
    expect(c.blockedFor('a')).toBe(0);
    c.undo('a');
    expect(c.size).toBe(0);
  });
});
