import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULTS, ServeFlags, UsageError, resolveConfig } from '../src/config';

const flags = (extra: Partial<ServeFlags> = {}): ServeFlags => ({
  vaultAddr: 'http://127.0.0.1:8200',
  listen: DEFAULTS.listen,
  adminLogin: DEFAULTS.adminLogin,
  adminPassword: 'pw',
  tls: true,
  logLevel: 'info',
  defaultSecretTtl: DEFAULTS.defaultSecretTtl,
  loginRateLimit: DEFAULTS.loginRateLimit,
  loginFailureLimit: DEFAULTS.loginFailureLimit,
  maxNodesPerGroup: DEFAULTS.maxNodesPerGroup,
  nodeIdleExpiry: DEFAULTS.nodeIdleExpiry,
  nodeTokenPeriod: DEFAULTS.nodeTokenPeriod,
  groupTokenRenewInterval: DEFAULTS.groupTokenRenewInterval,
  callbackInsecure: false,
  callbackTimeout: DEFAULTS.callbackTimeout,
  requirePsk: false,
  hostname: 'rks.local',
  certLifetime: DEFAULTS.certLifetime,
  certRenewBefore: DEFAULTS.certRenewBefore,
  ...extra,
});

describe('resolveConfig', () => {
  it('answers one frozen configuration', () => {
    const c = resolveConfig(flags({ trustProxy: ['10.0.0.0/8,loopback'], callbackTimeout: 3 }), {});
    expect(Object.isFrozen(c)).toBe(true);
    expect(c).toMatchObject({
      vaultAddr: 'http://127.0.0.1:8200',
      admin: { login: 'admin', password: 'pw' },
      tls: 'managed',
      trustProxy: ['10.0.0.0/8', 'loopback'],
      callback: { timeoutMs: 3000, insecure: false },
      loginLimits: { perSource: 10, perLogin: 5 },
    });
  });

  it('falls back to VAULT_ADDR and reads the password from a file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-config-'));
    fs.writeFileSync(path.join(dir, 'pw'), 'from-file\n');
    const c = resolveConfig(flags({ vaultAddr: undefined, adminPassword: undefined, adminPasswordFile: path.join(dir, 'pw') }), {
      VAULT_ADDR: 'http://vault:8200',
    });
    expect(c.vaultAddr).toBe('http://vault:8200');
    expect(c.admin.password).toBe('from-file');
    fs.rmSync(dir, { recursive: true });
  });

  it.each([
    ['no Vault address', flags({ vaultAddr: undefined }), /no Vault address/],
    ['no password', flags({ adminPassword: undefined }), /no administrator password/],
    ['a missing password file', flags({ adminPassword: undefined, adminPasswordFile: '/nonexistent/pw' }), /--admin-password-file: cannot read \/nonexistent\/pw \(ENOENT\)/],
    ['--cert without --cert-key', flags({ cert: '/x.pem' }), /--cert and --cert-key go together/],
    ['--require-psk without a PSK', flags({ requirePsk: true }), /--require-psk needs --psk/],
    ['a renewal longer than the lifetime', flags({ certRenewBefore: 100, certLifetime: 50 }), /--cert-renew-before must be shorter/],
    ['a proxy that is no address', flags({ trustProxy: 'proxy.example.com' }), /--trust-proxy: 'proxy.example.com'/],
  ])('%s is a usage error that says why', (_what, f, reason) => {
    expect(() => resolveConfig(f, {})).toThrow(UsageError);
    expect(() => resolveConfig(f, {})).toThrow(reason);
  });
});
