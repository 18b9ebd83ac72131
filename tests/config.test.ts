import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../src/config';
import { UsageError } from '../src/settings';
import { Settings, settingDefaults } from '../src/settings';

const flags = (extra: Partial<Settings> = {}): Settings => ({
  ...settingDefaults(),
  vaultAddr: ['http://127.0.0.1:8200'],
  adminPassword: 'pw-4q5mXz-7Lp_2VbNc8Rt1',
  hostname: 'rks.local',
  ...extra,
});

describe('resolveConfig', () => {
  it('starts with a weak administrator password only when told to accept the risk', () => {
    expect(resolveConfig(flags({ adminPassword: '12345', allowWeakAdminPassword: true }), {}).admin.password).toBe('12345');
  });

  it('answers one frozen configuration', () => {
    const c = resolveConfig(flags({ trustProxy: ['10.0.0.0/8,loopback'], callbackTimeout: 3 }), {});
    expect(Object.isFrozen(c)).toBe(true);
    expect(c).toMatchObject({
      vaultAddrs: ['http://127.0.0.1:8200'],
      vaultTimeout: 2,
      admin: { login: 'admin', password: 'pw-4q5mXz-7Lp_2VbNc8Rt1' },
      tls: 'managed',
      trustProxy: ['10.0.0.0/8', 'loopback'],
      callbackTimeout: 3,
      callbackInsecure: false,
      loginRateLimit: 10,
      loginFailureLimit: 5,
    });
    // Composite settings are there in their combined shape only.
    for (const raw of ['vaultAddr', 'adminPassword', 'adminLogin', 'pskFile', 'cert', 'certKey']) expect(c).not.toHaveProperty(raw);
  });

  it('falls back to VAULT_ADDR and reads the password from a file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-config-'));
    fs.writeFileSync(path.join(dir, 'pw'), 'from-file-4q5mXz-7Lp_2VbNc8\n');
    const c = resolveConfig(flags({ vaultAddr: undefined, adminPassword: undefined, adminPasswordFile: path.join(dir, 'pw') }), {
      VAULT_ADDR: 'http://vault:8200',
    });
    expect(c.vaultAddrs).toEqual(['http://vault:8200']);
    expect(c.admin.password).toBe('from-file-4q5mXz-7Lp_2VbNc8');
    fs.rmSync(dir, { recursive: true });
  });

  it('takes every node of a cluster: --vault-addr repeated, comma-separated, or both (duplicates once)', () => {
    const c = resolveConfig(flags({ vaultAddr: ['http://a:8200,http://b:8200/', ' https://c:8200', 'http://a:8200'] }), {});
    expect(c.vaultAddrs).toEqual(['http://a:8200', 'http://b:8200', 'https://c:8200']);
    expect(resolveConfig(flags({ vaultAddr: undefined }), { VAULT_ADDR: 'http://a:8200,http://b:8200' }).vaultAddrs).toEqual(['http://a:8200', 'http://b:8200']);
  });

  it.each([
    ['an address that is not a URL', flags({ vaultAddr: ['127.0.0.1:8200'] }), /--vault-addr: '127.0.0.1:8200' is not an http:\/\/ or https:\/\/ address/],
    ['an address with a path', flags({ vaultAddr: ['http://a:8200/v1'] }), /--vault-addr: 'http:\/\/a:8200\/v1' is not/],
    ['no Vault address', flags({ vaultAddr: undefined }), /no Vault address/],
    ['no password', flags({ adminPassword: undefined }), /no administrator password/],
    ['a missing password file', flags({ adminPassword: undefined, adminPasswordFile: '/nonexistent/pw' }), /--admin-password-file: cannot read \/nonexistent\/pw \(ENOENT\)/],
    ['--cert without --cert-key', flags({ cert: '/x.pem' }), /--cert and --cert-key go together/],
    ['--require-psk without a PSK', flags({ requirePsk: true }), /--require-psk needs --psk/],
    ['a renewal longer than the lifetime', flags({ certRenewBefore: 100, certLifetime: 50 }), /--cert-renew-before must be shorter/],
    ['a proxy that is no address', flags({ trustProxy: ['proxy.example.com'] }), /--trust-proxy: 'proxy.example.com'/],
    ['a weak administrator password', flags({ adminPassword: 'Password123!' }), /the administrator password is too weak \(about 78 bits; rks asks 80\).*--allow-weak-admin-password/],
    ['an administrator password of words', flags({ adminPassword: 'Password12345678!' }), /too weak \(made of words or patterns/],
  ])('%s is a usage error that says why', (_what, f, reason) => {
    expect(() => resolveConfig(f, {})).toThrow(UsageError);
    expect(() => resolveConfig(f, {})).toThrow(reason);
  });
});
