import { GroupService } from '../../src/groups/service';
import { Storage } from '../../src/secrets/storage';
import { SecretService } from '../../src/secrets/service';
import { NO_CALLBACK } from '../support/constants';
import { MEMORY_SECRET_PARTS, MemoryKv, MemoryPolicies, MemoryTokens, memorySession } from '../support/memory-vault';
import { Chain, chainFor } from '../support/pki';

/** The secret rules against an in-memory Vault (the same rules run against a real one in *.vault.test.ts). */
describe('SecretService (in memory)', () => {
  let kv: MemoryKv;
  let tokens: MemoryTokens;
  let secrets: SecretService;
  let groups: GroupService;
  let admin: string;
  let material: Chain;
  let other: Chain;
  const pem = (c: Chain, ttl?: number) => ({ certificate: c.certificate, private_key: c.privateKey, ...(ttl ? { meta: { ttl } } : {}) });

  beforeAll(async () => {
    material = await chainFor(['www.example.com']);
    other = await chainFor(['www.example.com']);
  });
  beforeEach(() => {
    kv = new MemoryKv();
    tokens = new MemoryTokens();
    secrets = new SecretService(new Storage(kv), 300, MEMORY_SECRET_PARTS);
    groups = new GroupService(new Storage(kv), new MemoryPolicies(), tokens, memorySession(tokens));
    admin = tokens.issue(['rks_admin']);
  });

  it('stores the validated material under the lower-cased name; a read gives the default TTL when none was set', async () => {
    await secrets.create(admin, 'WWW.Example.COM', pem(material));
    expect((await kv.read('www.example.com'))?.data).toEqual({
      certificate: material.certificate,
      private_key: material.privateKey,
      info: expect.objectContaining({ subject: 'CN=www.example.com', notAfter: material.leaf.cert.notAfter.toISOString(), keyType: 'EC P-256', chainLength: 3 }),
    });
    expect(await secrets.get(admin, 'www.example.com')).toEqual({
      data: { certificate: material.certificate, private_key: material.privateKey, meta: { ttl: 300 } },
    });
  });

  it('refuses a second create (409 already_exists) and leaves the first one', async () => {
    await secrets.create(admin, 'www.example.com', pem(material, 60));
    await expect(secrets.create(admin, 'www.example.com', pem(other))).rejects.toMatchObject({ status: 409, code: 'already_exists' });
    expect((await secrets.get(admin, 'www.example.com')).data.private_key).toBe(material.privateKey);
  });

  it('refuses material that does not belong together or does not name the secret, and writes nothing', async () => {
    await expect(secrets.create(admin, 'www.example.com', { certificate: material.certificate, private_key: other.privateKey })).rejects.toMatchObject({ status: 400 });
    await expect(secrets.create(admin, 'api.example.com', pem(material))).rejects.toMatchObject({ status: 400 });
    expect(kv.entries.size).toBe(0);
  });

  it('an update needs an existing secret, replaces it, and loses to a concurrent delete instead of resurrecting it', async () => {
    await expect(secrets.update(admin, 'www.example.com', pem(other))).rejects.toMatchObject({ status: 404 });
    await secrets.create(admin, 'www.example.com', pem(material));
    await secrets.update(admin, 'www.example.com', pem(other, 42));
    expect((await secrets.get(admin, 'www.example.com')).data).toMatchObject({ private_key: other.privateKey, meta: { ttl: 42 } });

    kv.beforeWrite = async (path) => {
      kv.beforeWrite = undefined;
      if (path === 'www.example.com') await kv.destroy(path);
    };
    await expect(secrets.update(admin, 'www.example.com', pem(material))).rejects.toMatchObject({ status: 409 });
    expect(await kv.read('www.example.com')).toBeNull();
  });

  it('a secret still associated with a group cannot be deleted (409 still_associated, groups named); afterwards every version is gone', async () => {
    await secrets.create(admin, 'www.example.com', pem(material));
    await groups.create(admin, 'edge', NO_CALLBACK);
    await groups.associate(admin, 'edge', 'www.example.com');
    expect(await secrets.groups(admin, 'www.example.com')).toEqual(['edge']);
    await expect(secrets.delete(admin, 'www.example.com')).rejects.toMatchObject({ status: 409, code: 'still_associated', message: expect.stringContaining("'edge'") });
    expect(await kv.read('www.example.com')).not.toBeNull();

    await groups.dissociate(admin, 'edge', 'www.example.com');
    await secrets.delete(admin, 'www.example.com');
    expect(await kv.read('www.example.com')).toBeNull();
    await expect(secrets.get(admin, 'www.example.com')).rejects.toMatchObject({ status: 404 });
    await expect(secrets.groups(admin, 'www.example.com')).rejects.toMatchObject({ status: 404 });
  });

  it('a deletion that an association on another instance overtook leaves no copy of the deleted key', async () => {
    await secrets.create(admin, 'www.example.com', pem(material));
    await groups.create(admin, 'edge', NO_CALLBACK);
    const read = kv.read.bind(kv);
    let raced = false;
    kv.read = async (path, token, version) => {
      const answer = await read(path, token, version);
      // The deletion has found no group; another instance associates before it deletes.
      if (path === 'index/secret-groups/www.example.com' && !raced) {
        raced = true;
        kv.read = read;
        await groups.associate(admin, 'edge', 'www.example.com');
      }
      return answer as never;
    };
    await secrets.delete(admin, 'www.example.com');
    expect(raced).toBe(true);
    expect(await kv.exists('www.example.com')).toBe(false);
    expect(await kv.exists('groups/edge/secrets/www.example.com')).toBe(false);
  });

  it('a group deleted while another instance associates keeps no copy for a group made again under its name', async () => {
    await secrets.create(admin, 'www.example.com', pem(material));
    await groups.create(admin, 'edge', NO_CALLBACK);
    const list = kv.list.bind(kv);
    let raced = false;
    kv.list = async (prefix) => {
      const answer = await list(prefix);
      // The deletion has listed the copies; another instance associates before it ends.
      if (prefix === 'groups/edge/secrets/' && !raced) {
        raced = true;
        await new GroupService(new Storage(kv), new MemoryPolicies(), tokens, memorySession(tokens)).associate(admin, 'edge', 'www.example.com');
      }
      return answer;
    };
    await groups.delete(admin, 'edge');
    expect(raced).toBe(true);
    await groups.create(admin, 'edge', NO_CALLBACK);
    expect(await groups.secrets(admin, 'edge')).toEqual([]);
    expect(await secrets.groups(admin, 'www.example.com')).toEqual([]);
  });
});
