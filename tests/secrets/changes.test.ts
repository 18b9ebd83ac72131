import { CHANGES_KEPT, ChangeLog, deltaOf } from '../../src/secrets/changes';
import { kvPath } from '../../src/vault/layout';
import type { GroupSerial } from '../../src/records/groups';
import { MemoryKv } from '../support/memory-vault';

describe("a group's change log", () => {
  const serial = (log: [number, string, string][]): GroupSerial => ({ incarnation: 'i', log: log.map(([v, n, op]) => `${v} ${op} ${n}`).join('\n') });

  it('folds the changes since a version into what an edge must do', () => {
    const s = serial([
      [2, 'a.example.com', 'a'],
      [3, 'b.example.com', 'k'],
      [4, 'c.example.com', 'r'],
      [5, 'c.example.com', 'a'],
      [5, 'd.example.com', 'a'],
      [6, 'd.example.com', 'r'],
      [7, 'b.example.com', 'r'],
      [8, 'e.example.com', 'k'],
    ]);
    expect(deltaOf(s, 1, 8)).toEqual({ added: ['a.example.com', 'c.example.com'], removed: ['b.example.com', 'd.example.com'], replaced: ['e.example.com'] });
    expect(deltaOf(s, 2, 3)).toEqual({ added: [], removed: [], replaced: ['b.example.com'] });
    expect(deltaOf(s, 8, 8)).toEqual({ added: [], removed: [], replaced: [] });
  });

  it('says nothing when a version in between is not in the log: the whole list then', () => {
    const s = serial([
      [2, 'a.example.com', 'a'],
      [4, 'b.example.com', 'a'],
    ]);
    expect(deltaOf(s, 1, 4)).toBeNull();
    expect(deltaOf(s, 0, 2)).toBeNull();
    expect(deltaOf(s, 3, 4)).toEqual({ added: ['b.example.com'], removed: [], replaced: [] });
    // Written by anyone who may write the serial: what is not a change is no change.
    expect(deltaOf({ incarnation: 'i', log: [[2, 'a.example.com', 'a']] as never }, 1, 2)).toBeNull();
    expect(deltaOf({ incarnation: 'i', log: '2 a ../x\n2 x a.example.com\nnonsense' }, 1, 2)).toBeNull();
  });

  it('records each change as a new version of the serial, and keeps the last few hundred', async () => {
    const kv = new MemoryKv();
    await kv.write(kvPath.groupSerial('edge'), { incarnation: 'i' }, 't');
    const log = new ChangeLog(kv);
    await log.record('t', 'edge', [['a.example.com', 'a']]);
    await log.record('t', 'edge', [['a.example.com', 'k']]);
    const s = (await kv.read<GroupSerial>(kvPath.groupSerial('edge'), 't'))!;
    expect(s.version).toBe(3);
    expect(deltaOf(s.data, 1, 3)).toEqual({ added: ['a.example.com'], removed: [], replaced: [] });
    expect(deltaOf(s.data, 2, 3)).toEqual({ added: [], removed: [], replaced: ['a.example.com'] });
    for (let i = 0; i < CHANGES_KEPT + 10; i++) await log.record('t', 'edge', [[`n${i}.example.com`, 'a']]);
    const after = (await kv.read<GroupSerial>(kvPath.groupSerial('edge'), 't'))!;
    expect(after.data.log!.split('\n')).toHaveLength(CHANGES_KEPT);
    expect(deltaOf(after.data, 2, after.version)).toBeNull();
    expect(deltaOf(after.data, after.version - 5, after.version)?.added).toHaveLength(5);
    // Long names: the newest that fit in a few KB, still one string.
    const long = (i: number) => `${'x'.repeat(40)}.${'y'.repeat(40)}.n${i}.example.com`;
    for (let i = 0; i < 200; i++) await log.record('t', 'edge', [[long(i), 'k']]);
    const longer = (await kv.read<GroupSerial>(kvPath.groupSerial('edge'), 't'))!;
    expect(longer.data.log!.length).toBeLessThanOrEqual(12_000);
    expect(deltaOf(longer.data, longer.version - 10, longer.version)?.replaced).toHaveLength(10);
    // A group without a serial (deleted meanwhile) gets none.
    await log.record('t', 'gone', [['a.example.com', 'a']]);
    expect(await kv.read(kvPath.groupSerial('gone'), 't')).toBeNull();
  });

  it('records every change of writers racing each other, or starts afresh: never a delta that misses one', async () => {
    const kv = new MemoryKv();
    await kv.write(kvPath.groupSerial('edge'), { incarnation: 'i' }, 't');
    const log = new ChangeLog(kv);
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.record('t', 'edge', [[`n${i}.example.com`, 'a']])));
    const s = (await kv.read<GroupSerial>(kvPath.groupSerial('edge'), 't'))!;
    const delta = deltaOf(s.data, 1, s.version);
    if (delta) expect(delta.added.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `n${i}.example.com`).sort());
    else expect(s.version).toBeGreaterThan(1);
  });

  it("writes changes that come together in one version: a bulk import's associations do not race each other for the serial", async () => {
    const kv = new MemoryKv();
    await kv.write(kvPath.groupSerial('edge'), { incarnation: 'i' }, 't');
    let writes = 0;
    kv.beforeWrite = (p) => void (p === kvPath.groupSerial('edge') && writes++);
    const log = new ChangeLog(kv);
    const names = Array.from({ length: 50 }, (_, i) => `n${i}.example.com`);
    await Promise.all(names.map((n) => log.record('t', 'edge', [[n, 'a']])));
    const s = (await kv.read<GroupSerial>(kvPath.groupSerial('edge'), 't'))!;
    expect(deltaOf(s.data, 1, s.version)?.added).toEqual([...names].sort());
    // The first alone, then the 49 that came while it was written.
    expect(writes).toBe(2);
    expect(s.version).toBe(3);
    // Another caller's changes go in a write of their own (racing this caller's, by check-and-set).
    await Promise.all([log.record('t', 'edge', [['x.example.com', 'k']]), log.record('u', 'edge', [['y.example.com', 'k']])]);
    const both = (await kv.read<GroupSerial>(kvPath.groupSerial('edge'), 't'))!;
    expect(both.version).toBe(5);
    expect(deltaOf(both.data, 3, 5)?.replaced).toEqual(['x.example.com', 'y.example.com']);
  });

  it('keeps whole versions only: a version too large for the log is not told as a delta, never in part', async () => {
    const kv = new MemoryKv();
    await kv.write(kvPath.groupSerial('edge'), { incarnation: 'i' }, 't');
    const log = new ChangeLog(kv);
    // One change written alone, then CHANGES_KEPT + 10 together in the next version.
    const many = Array.from({ length: CHANGES_KEPT + 10 }, (_, i) => `m${i}.example.com`);
    await Promise.all([log.record('t', 'edge', [['first.example.com', 'a']]), ...many.map((n) => log.record('t', 'edge', [[n, 'a']]))]);
    const s = (await kv.read<GroupSerial>(kvPath.groupSerial('edge'), 't'))!;
    expect(s.version).toBe(3);
    expect(deltaOf(s.data, 2, 3)).toBeNull();
    expect(deltaOf(s.data, 1, 3)).toBeNull();
    // The next version fits again, and is told alone.
    await log.record('t', 'edge', [['next.example.com', 'a']]);
    const after = (await kv.read<GroupSerial>(kvPath.groupSerial('edge'), 't'))!;
    expect(deltaOf(after.data, 3, 4)).toEqual({ added: ['next.example.com'], removed: [], replaced: [] });
    expect(deltaOf(after.data, 2, 4)).toBeNull();
  });
});
