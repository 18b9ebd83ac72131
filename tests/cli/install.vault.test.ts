import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { env } from '../support/harness';
import { freePort } from '../support/vault';

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * `rks` on an administrator's machine without the repository: the packed package installed with
 * `npm install -g` into an empty prefix, run from outside the checkout with nothing but that
 * prefix, Node and the system on PATH.
 */
describe('the packed rks package, installed globally', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-install-'));
  const prefix = path.join(dir, 'prefix');
  const home = path.join(dir, 'home');
  let tarball: string;
  let served: ChildProcess | undefined;
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
  // Only the installed prefix, Node and the system: no node_modules/.bin, no bin/ of the checkout.
  const userEnv = () => ({ PATH: [path.join(prefix, 'bin'), path.dirname(process.execPath), '/usr/bin', '/bin'].join(':'), HOME: home });
  const rks = (args: string[], extra: Record<string, string> = {}) =>
    execFileSync('rks', args, { cwd: home, env: { ...userEnv(), ...extra }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) throw new Error('dist/ is missing: make build first');
    fs.mkdirSync(home);
    tarball = path.join(dir, execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!);
    // The dependencies come from npm's cache when make test's npm ci filled it, else the registry.
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], {
      cwd: home,
      env: { ...process.env, HOME: process.env.HOME ?? home },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }, 180_000);

  afterAll(async () => {
    if (served && served.exitCode === null) {
      const exited = new Promise((r) => served!.once('exit', r));
      served.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('holds the built server, the contract and the nginx module, and neither sources nor tests', () => {
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const f of ['package/bin/rks', 'package/dist/src/cli/main.js', 'package/openapi/rks.yaml', 'package/edge/nginx/rks.lua', 'package/deploy/systemd/rks.service', 'package/deploy/systemd/rks-edge.service', 'package/README.md'])
      expect(files).toContain(f);
    expect(files.filter((f) => /^package\/(src|tests|bench|scripts)\/|\.ts$(?<!\.d\.ts$)/.test(f))).toEqual([]);
  });

  it('ships systemd units that systemd takes with the installed rks', () => {
    const units = path.join(prefix, 'lib', 'node_modules', 'rks', 'deploy', 'systemd');
    for (const unit of ['rks.service', 'rks-edge.service']) {
      // systemd finds `rks` in /usr/bin or /usr/local/bin, where npm -g puts it; here, the prefix's.
      const copy = path.join(dir, unit);
      fs.writeFileSync(copy, fs.readFileSync(path.join(units, unit), 'utf8').replaceAll('ExecStart=rks ', `ExecStart=${path.join(prefix, 'bin', 'rks')} `));
      const out = spawnSync('systemd-analyze', ['verify', '--man=no', copy], { encoding: 'utf8' });
      expect({ unit, status: out.status, stderr: out.stderr.trim() }).toEqual({ unit, status: 0, stderr: '' });
    }
  });

  it('answers rks -V and --help from any directory', () => {
    expect(rks(['-V']).trim()).toBe(version);
    expect(rks(['--help'])).toMatch(/Commands:[\s\S]*serve[\s\S]*edge/);
  });

  it('serves rks over HTTPS, fetches its CA with the PSK and logs in', async () => {
    const port = await freePort();
    const psk = randomBytes(18).toString('base64url');
    let out = '';
    served = spawn('rks', ['serve', '--listen', `127.0.0.1:${port}`], {
      cwd: home,
      env: { ...userEnv(), RKS_VAULT_ADDR: env.vaultAddr, RKS_ADMIN_LOGIN: env.adminLogin, RKS_ADMIN_PASSWORD: env.adminPassword, RKS_PSK: psk },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    served.stdout!.on('data', (d) => (out += d));
    served.stderr!.on('data', (d) => (out += d));
    const url = `https://127.0.0.1:${port}`;
    const ca = path.join(home, 'ca.pem');
    for (let i = 0; ; i++) {
      try {
        rks(['ca', 'cert', '--url', url, '--psk', psk, '--out', ca]);
        break;
      } catch (err) {
        if (i > 100 || served.exitCode !== null) throw new Error(`rks serve from the installed package did not answer:\n${out}\n${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(fs.readFileSync(ca, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const token = rks(['login', '--url', url, '--ca-cert', ca], { RKS_ADMIN_LOGIN: env.adminLogin, RKS_ADMIN_PASSWORD: env.adminPassword }).trim();
    expect(token).toMatch(/^\S{20,}$/);
    const status = JSON.parse(rks(['status', '--url', url, '--ca-cert', ca, '--json']));
    expect(status).toMatchObject({ ready: true, version });
  }, 60_000);
});
