import { AdminService, sourceKey } from '../../src/admin/service';
import type { LoginAnswer, LoginStore } from '../../src/vault/stores';

/** A userpass mount that answers after a delay and counts what reached it. */
function fakeVault(password: string, delayMs = 5, also?: string) {
  const seen: string[] = [];
  const sys = {
    async userpassLogin(_mount: string, user: string, given: string): Promise<LoginAnswer> {
      seen.push(user);
      await new Promise((r) => setTimeout(r, delayMs));
      return given === password || given === also ? { token: `hvs.token-for-${user}` } : { refused: 'invalid' };
    },
  } as LoginStore;
  return { sys, seen };
}

/** These tests log in only: no token is looked up. */
const noTokens = { lookupSelf: () => Promise.reject(new Error('no token is looked up here')) };

const statusOf = (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (err: { status?: number }) => err.status ?? 500,
  );

describe('AdminService.login', () => {
  const admin = { login: 'ops', password: 'the right one' };

  it('wrong passwords for the configured administrator never reach Vault, from any number of addresses; the right one always gets in', async () => {
    const { sys, seen } = fakeVault(admin.password);
    const service = new AdminService(sys, noTokens, { perSource: 10, perLogin: 5 }, admin);
    // 1,100 wrong guesses from 110 addresses, ten each: refused (400, then 429 like any login past its limit), none asked of Vault.
    const statuses = await Promise.all(Array.from({ length: 1100 }, (_, i) => statusOf(service.login('OPS', `guess-${i}`, `10.0.${i % 110}.1`))));
    expect(new Set(statuses)).toEqual(new Set([400, 429]));
    expect(seen).toEqual([]);
    expect(await service.login('ops', admin.password, '10.9.9.9')).toBe('hvs.token-for-ops');
    // An address that kept failing is refused (its own limit), and no other.
    expect(await statusOf(service.login('ops', admin.password, '10.0.5.1'))).toBe(429);
  });

  it("the configured administrator's wrong passwords are answered as another login's: the same limits tell no one which login is rks's", async () => {
    const { sys } = fakeVault('theirs', 5, admin.password);
    const service = new AdminService(sys, noTokens, { perSource: 1000, perLogin: 5 }, admin);
    const answers = async (login: string) => {
      const out = [];
      for (let i = 0; i < 7; i++) out.push(await statusOf(service.login(login, `guess-${i}`, `10.6.${i}.1`)));
      return out;
    };
    expect(await answers('someone')).toEqual([400, 400, 400, 400, 400, 429, 429]);
    expect(await answers('ops')).toEqual([400, 400, 400, 400, 400, 429, 429]);
    // Its right password still gets in, from anywhere that has not itself kept failing.
    expect(await service.login('ops', admin.password, '10.7.0.1')).toBe('hvs.token-for-ops');
  });

  it("a wrong password is refused as slowly for the configured administrator as Vault refuses others: the time does not tell which login is rks's", async () => {
    const { sys } = fakeVault(admin.password, 120);
    const service = new AdminService(sys, noTokens, { perSource: 1000, perLogin: 1000 }, admin);
    const timed = async (login: string, i: number) => {
      const started = performance.now();
      expect(await statusOf(service.login(login, `guess-${i}`, `10.4.${i}.1`))).toBe(400);
      return performance.now() - started;
    };
    for (let i = 0; i < 10; i++) await timed(`user${i}`, i); // Vault's refusals, learnt
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    const others = median(await Promise.all(Array.from({ length: 9 }, (_, i) => timed(`other${i}`, 20 + i))));
    const administrator = median(await Promise.all(Array.from({ length: 9 }, (_, i) => timed('ops', 40 + i))));
    expect(administrator).toBeGreaterThan(others * 0.7);
    expect(administrator).toBeLessThan(others * 1.3);
  });

  it('other login names pass at most the per-login limit of failures to Vault, however many addresses try', async () => {
    const { sys, seen } = fakeVault('theirs', 5, admin.password);
    const service = new AdminService(sys, noTokens, { perSource: 1000, perLogin: 5 }, admin);
    const statuses = await Promise.all(Array.from({ length: 100 }, (_, i) => statusOf(service.login('someone', `guess-${i}`, `10.0.${i}.1`))));
    expect(seen.length).toBe(5);
    expect(statuses.filter((s) => s === 400)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(95);
    expect(await service.login('ops', admin.password, '10.9.9.9')).toBe('hvs.token-for-ops');
  });

  it('caps logins it cannot vouch for that wait on Vault at once; the configured administrator is not capped', async () => {
    const { sys, seen } = fakeVault(admin.password, 50);
    const service = new AdminService(sys, noTokens, { perSource: 1000, perLogin: 1000 }, admin);
    const others = Array.from({ length: 30 }, (_, i) => statusOf(service.login(`user${i}`, 'x', `10.2.${i}.1`)));
    const mine = statusOf(service.login('ops', admin.password, '10.2.200.1'));
    const statuses = await Promise.all(others);
    expect(seen.filter((u) => u !== 'ops').length).toBe(16);
    expect(statuses.filter((s) => s === 429)).toHaveLength(14);
    expect(await mine).toBe(200);
  });

  it('successful logins are not limited, however many', async () => {
    const { sys } = fakeVault(admin.password, 0);
    const service = new AdminService(sys, noTokens, { perSource: 2, perLogin: 2 }, admin);
    for (let i = 0; i < 50; i++) expect(await service.login('ops', admin.password, '10.3.0.1')).toMatch(/^hvs\./);
  });
});

describe('sourceKey', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::99', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['2001:0DB8:0001:0002:ffff::', '2001:db8:1:2::/64'],
  ])('%s counts as %s', (address, key) => {
    expect(sourceKey(address)).toBe(key);
  });

  it('counts a whole site (IPv4 /24, IPv6 /48) as one where slots are few: eight /64s of one /48, or eight addresses of one /24, are one source', () => {
    expect([...new Set(Array.from({ length: 8 }, (_, i) => sourceKey(`2001:db8:7:${i}0::1`, 'site')))]).toEqual(['2001:db8:7::/48']);
    expect([...new Set(Array.from({ length: 8 }, (_, i) => sourceKey(`198.51.100.${i + 1}`, 'site')))]).toEqual(['198.51.100.0/24']);
    expect(sourceKey('::ffff:198.51.100.7', 'site')).toBe('198.51.100.0/24');
    expect(sourceKey('2001:db8:8::1', 'site')).not.toBe(sourceKey('2001:db8:7::1', 'site'));
  });
});
