import { Storage } from '../../src/secrets/storage';
import { kvPath } from '../../src/vault/layout';
import { MemoryKv } from '../support/memory-vault';

describe("a group's copies (in memory)", () => {
  it('a copy that says it moved is never current for a pushed secret, whatever its version says: rewritten, and told to edges', async () => {
    const kv = new MemoryKv();
    const fqdn = 'a.example.com';
    await kv.write(fqdn, { certificate: 'pushed certificate', private_key: 'pushed key' }, 't');
    // Left by a move to the managed folder that could not finish, naming by chance the same version.
    await kv.write(kvPath.groupCopy('g', fqdn), { certificate: 'managed certificate', private_key: 'managed key', source: 1, moved: true }, 't');
    await kv.write(kvPath.groupSerial('g'), { incarnation: 'i' }, 't');
    expect(await new Storage(kv).copies.sync('t', 'g', fqdn, false)).toBe(true);
    const copy = (await kv.read<Record<string, unknown>>(kvPath.groupCopy('g', fqdn), 't'))!.data;
    expect(copy).toEqual({ certificate: 'pushed certificate', private_key: 'pushed key', source: 1 });
    const serial = (await kv.read<{ log: string }>(kvPath.groupSerial('g'), 't'))!;
    expect(serial.data.log).toBe(`${serial.version} k ${fqdn}`);
  });
});
