import { casUpdate } from '../../src/vault/kv';
import { MemoryKv } from '../support/memory-vault';
import { NO_CHANGE } from '../../src/vault/stores';

/** Check-and-set updates, run on the in-memory store (the same function runs on Vault's). */
describe('casUpdate', () => {
  const add = (n: number) => (c: { n: number[] } | null) => ({ n: [...(c?.n ?? []), n] });

  it('starts from the entry the caller saw, without reading it again', async () => {
    const kv = new MemoryKv();
    await kv.write('x', { n: [1] }, 't');
    const seen = await kv.read<{ n: number[] }>('x');
    const reads = jest.spyOn(kv, 'read');
    await casUpdate(kv, 'x', 't', add(2), { seen });
    expect(reads).not.toHaveBeenCalled();
    expect((await kv.read('x'))?.data).toEqual({ n: [1, 2] });
  });

  it('reads again when what the caller saw is out of date: no change by someone else is lost', async () => {
    const kv = new MemoryKv();
    await kv.write('x', { n: [1] }, 't');
    const seen = await kv.read<{ n: number[] }>('x');
    await kv.write('x', { n: [1, 3] }, 't');
    await casUpdate(kv, 'x', 't', add(2), { seen });
    expect((await kv.read('x'))?.data).toEqual({ n: [1, 3, 2] });
  });

  it('treats a missing entry the caller saw as absent, and loses to a writer that created it first', async () => {
    const kv = new MemoryKv();
    await kv.write('x', { n: [7] }, 't');
    await casUpdate(kv, 'x', 't', add(2), { seen: null });
    expect((await kv.read('x'))?.data).toEqual({ n: [7, 2] });
    const unchanged = await casUpdate(kv, 'y', 't', () => NO_CHANGE, { seen: null });
    expect(unchanged).toBeNull();
    expect(await kv.exists('y')).toBe(false);
  });
});

/** The check-and-set write every "create unless it exists" and "replace what was read" goes through. */
describe('writeAt', () => {
  const taken = () => new Error('taken');

  it('creates at version 0 once; a second create meets the caller\'s own error and changes nothing', async () => {
    const kv = new MemoryKv();
    expect(await kv.writeAt('x', { v: 1 }, 't', 0, taken)).toBe(1);
    await expect(kv.writeAt('x', { v: 2 }, 't', 0, taken)).rejects.toThrow('taken');
    expect(await kv.read('x')).toEqual({ data: { v: 1 }, version: 1 });
  });

  it('replaces only the version the caller read', async () => {
    const kv = new MemoryKv();
    await kv.write('x', { v: 1 }, 't');
    await kv.write('x', { v: 2 }, 't');
    await expect(kv.writeAt('x', { v: 3 }, 't', 1, taken)).rejects.toThrow('taken');
    expect(await kv.writeAt('x', { v: 3 }, 't', 2, taken)).toBe(3);
  });

  it('lets other failures through as they are', async () => {
    const kv = new MemoryKv();
    jest.spyOn(kv, 'write').mockRejectedValueOnce(new Error('vault down'));
    await expect(kv.writeAt('x', {}, 't', 0, taken)).rejects.toThrow('vault down');
  });
});
