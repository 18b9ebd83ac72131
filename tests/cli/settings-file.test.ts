import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runRks } from '../support/serve';

/** `rks serve --config FILE`: one precedence rule, flag > environment > file > default, shown by --print-config. */
describe('rks serve settings file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-settings-'));
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  const printed = async (args: string[], env: Record<string, string> = {}) => {
    const run = runRks(['serve', ...args, '--print-config'], env);
    const code = await run.exited;
    const settings = new Map<string, [string, string]>();
    for (const line of run.stdout().split('\n')) {
      const m = /^(RKS_[A-Z_]+)=(\S*)\s+# (\w+)$/.exec(line);
      if (m) settings.set(m[1]!, [m[2]!, m[3]!]);
    }
    return { code, settings, output: run.output() };
  };
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('takes each setting from the flag, else the environment, else the file, else the default', async () => {
    const conf = file('rks.conf', [
      '# rks settings',
      'RKS_VAULT_ADDR=http://vault-from-file:8200',
      'export RKS_VAULT_TIMEOUT="7"',
      "RKS_LISTEN='127.0.0.1:9999'",
      'RKS_ACME_TIMEOUT=20',
      '',
      'RKS_NO_TLS=true',
    ].join('\n'));
    const { code, settings } = await printed(['--config', conf, '--vault-timeout', '9'], { RKS_LISTEN: '127.0.0.1:7777' });
    expect(code).toBe(0);
    expect(settings.get('RKS_VAULT_TIMEOUT')).toEqual(['9', 'flag']);
    expect(settings.get('RKS_LISTEN')).toEqual(['127.0.0.1:7777', 'environment']);
    expect(settings.get('RKS_VAULT_ADDR')).toEqual(['http://vault-from-file:8200', 'file']);
    expect(settings.get('RKS_ACME_TIMEOUT')).toEqual(['20', 'file']);
    expect(settings.get('RKS_NO_TLS')).toEqual(['true', 'file']);
    expect(settings.get('RKS_MANAGED_CHECK_INTERVAL')).toEqual(['30', 'default']);
    // The file can be named by the environment too.
    const viaEnv = await printed([], { RKS_CONFIG: conf });
    expect(viaEnv.settings.get('RKS_VAULT_TIMEOUT')).toEqual(['7', 'file']);
  });

  it('hides secrets, whichever source set them', async () => {
    const conf = file('secret.conf', 'RKS_ADMIN_PASSWORD=correct-horse-battery-staple-42\nRKS_PSK=the-psk-value\n');
    const { settings, output } = await printed(['--config', conf, '--cert-key-pass', 'pass-from-flag']);
    expect(settings.get('RKS_ADMIN_PASSWORD')).toEqual(['(hidden)', 'file']);
    expect(settings.get('RKS_PSK')).toEqual(['(hidden)', 'file']);
    expect(settings.get('RKS_CERT_KEY_PASS')).toEqual(['(hidden)', 'flag']);
    expect(output).not.toMatch(/correct-horse|the-psk-value|pass-from-flag/);
  });

  it('refuses a file it cannot take, naming the file and the line: unknown names (with the likely one), bad values, bad lines, no file', async () => {
    for (const [text, why] of [
      ['# timeouts\nRKS_VAULT_TIMEOT=5\n', /--config .*bad\.conf, line 2: RKS_VAULT_TIMEOT is no setting of rks serve \(did you mean RKS_VAULT_TIMEOUT\? see rks serve --help\)/],
      ['RKS_SOMETHING_ELSE=5\n', /line 1: RKS_SOMETHING_ELSE is no setting of rks serve \(see rks serve --help\)/],
      ['\n\nRKS_VAULT_TIMEOUT=soon\n', /line 3: RKS_VAULT_TIMEOUT: --vault-timeout must be a positive integer/],
      ['this is not a setting\n', /line 1: not NAME=value/],
      ['RKS_LOG_LEVEL=info\nRKS_NO_TLS=maybe\n', /bad\.conf, line 2: RKS_NO_TLS must be true or false, got 'maybe'/],
      ['RKS_LOG_LEVEL=loud\n', /line 1: RKS_LOG_LEVEL: Allowed choices are fatal, error/],
      ['RKS_LISTEN=127.0.0.1:80x1\n', /line 1: RKS_LISTEN: --listen must be host:port, got '127\.0\.0\.1:80x1'/],
      ['RKS_TRUST_PROXY=10.0.0.0/8,not-an-address\n', /--trust-proxy: 'not-an-address' is not an address.* \(RKS_TRUST_PROXY at --config .*bad\.conf, line 1\)/],
    ] as const) {
      const run = runRks(['serve', '--config', file('bad.conf', text), '--print-config']);
      expect(await run.exited).toBe(2);
      expect(run.output()).toMatch(why);
      expect(run.stdout()).toBe('');
    }
    const missing = runRks(['serve', '--config', path.join(dir, 'nope.conf')]);
    expect(await missing.exited).toBe(2);
    expect(missing.output()).toMatch(/--config .*nope\.conf: no such file/);
  });

  it('names the variable of a bad value from the environment, before anything else happens, --print-config too', async () => {
    for (const [env, why] of [
      [{ RKS_LISTEN: '127.0.0.1:80x1' }, /RKS_LISTEN.*--listen must be host:port/],
      [{ RKS_VAULT_TIMEOUT: 'abc' }, /RKS_VAULT_TIMEOUT.*--vault-timeout must be a positive integer/],
      [{ RKS_NO_TLS: 'maybe' }, /RKS_NO_TLS must be true or false, got 'maybe'/],
      [{ RKS_TRUST_PROXY: 'nowhere' }, /--trust-proxy: 'nowhere' is not an address.* \(RKS_TRUST_PROXY in the environment\)/],
      [{ RKS_VAULT_ADDR: '', VAULT_ADDR: 'vault:8200' }, /--vault-addr: 'vault:8200' is not an http.* \(VAULT_ADDR in the environment\)/],
      [{ RKS_CERT: '/nonexistent.pem' }, /--cert and --cert-key go together \(RKS_CERT in the environment\)/],
    ] as const) {
      for (const args of [['--print-config'], []]) {
        const run = runRks(['serve', ...args], Object.fromEntries(Object.entries({ RKS_VAULT_ADDR: 'http://127.0.0.1:1', RKS_ADMIN_PASSWORD: 'correct-horse-battery-staple-42', ...env }).filter(([, v]) => v !== '')));
        expect(await run.exited).toBe(2);
        expect(run.output()).toMatch(why);
        // A plain line, as every configuration error: no JSON log line.
        expect(run.output()).not.toMatch(/"level"/);
      }
    }
  });

  it('refuses a weak administrator password in a plain line naming where it came from', async () => {
    const conf = file('weak.conf', 'RKS_VAULT_ADDR=http://127.0.0.1:1\nRKS_ADMIN_PASSWORD=Password123!\n');
    const run = runRks(['serve', '--config', conf]);
    expect(await run.exited).toBe(2);
    expect(run.output()).toMatch(/^rks: the administrator password is too weak .* \(RKS_ADMIN_PASSWORD at --config .*weak\.conf, line 2\)\n$/);
  });

  it('says which password wins when both are given', async () => {
    const secret = file('password', 'correct-horse-battery-staple-42\n');
    const run = runRks(['serve', '--print-config', '--admin-password-file', secret], { RKS_ADMIN_PASSWORD: 'another-long-password-of-words-99' });
    expect(await run.exited).toBe(0);
    expect(run.output()).toMatch(/both --admin-password and --admin-password-file are set: the file wins/);
  });

  it('says a port in use before it contacts Vault', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      // Vault's address answers nothing: rks must not get that far.
      const run = runRks(['serve', '--listen', `127.0.0.1:${port}`], { RKS_VAULT_ADDR: 'http://192.0.2.1:8200', RKS_ADMIN_PASSWORD: 'correct-horse-battery-staple-42' });
      expect(await run.exited).toBe(1);
      expect(run.output()).toBe(`rks: --listen 127.0.0.1:${port}: the address is already in use\n`);
    } finally {
      taken.close();
    }
  });
});
