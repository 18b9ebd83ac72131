import { Listings } from '../../src/secrets/listing';
import { Storage } from '../../src/secrets/storage';
import { kvPath } from '../../src/vault/layout';
import { MemoryKv } from '../support/memory-vault';
import { chainFor } from '../support/pki';

describe('the catalog', () => {
  it('owes a change whose serial it could not write to the next refresh: a listing sees it once Vault takes writes again', async () => {
    const kv = new MemoryKv();
    const failing = { serial: 0 };
    const write = kv.write.bind(kv);
    kv.write = (async (path: string, data: unknown, token: string, cas?: number) => {
      if (path === kvPath.catalogSerial && failing.serial > 0) {
        failing.serial--;
        throw new Error('Vault timed out');
      }
      return write(path, data, token, cas);
    }) as typeof kv.write;
    const { records, catalog } = new Storage(kv);
    const listings = new Listings(catalog);
    const chain = await chainFor(['www.example.com']);
    await records.create('root', 'www.example.com', { certificate: chain.certificate, private_key: chain.privateKey });
    expect((await listings.current('root')).size).toBe(0);

    // The entry lands, its announcement does not (tried twice): the listing cannot know.
    failing.serial = 2;
    await expect(catalog.refresh('root', 'www.example.com')).rejects.toThrow(/timed out/);
    expect((await listings.current('root')).size).toBe(0);
    // Tried again: the entry is as it should be already, and the serial it owes is written now.
    await catalog.refresh('root', 'www.example.com');
    expect((await listings.current('root')).size).toBe(1);
  });
});
