import fs from 'node:fs';
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

  it('refuses a file it cannot take, saying where: unknown names, bad values, bad lines, no file', async () => {
    for (const [text, why] of [
      ['RKS_VAULT_TIMEOT=5\n', /RKS_VAULT_TIMEOT is no setting of rks serve/],
      ['RKS_VAULT_TIMEOUT=soon\n', /RKS_VAULT_TIMEOUT: --vault-timeout must be a positive integer/],
      ['this is not a setting\n', /line 1: not NAME=value/],
      ['RKS_NO_TLS=maybe\n', /RKS_NO_TLS must be true or false/],
    ] as const) {
      const run = runRks(['serve', '--config', file('bad.conf', text), '--print-config']);
      expect(await run.exited).toBe(2);
      expect(run.output()).toMatch(why);
    }
    const missing = runRks(['serve', '--config', path.join(dir, 'nope.conf')]);
    expect(await missing.exited).toBe(2);
    expect(missing.output()).toMatch(/--config .*nope\.conf: no such file/);
  });
});
