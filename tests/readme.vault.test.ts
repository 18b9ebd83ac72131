import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { ReadmeCommand, readmeBlocks, readmeCommands, showsFailure, shownPattern } from './support/readme';
import { freePort, freePortWith } from './support/vault';

const ROOT = path.resolve(__dirname, '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
/** The sections a new user follows in order after `make dev ACME=1`, in one shell. */
const SECTIONS = ['Walk-through with the `rks` CLI', 'The same with curl', 'ACME with make dev'];

/** One bash, fed a command at a time, as a user pasting the README's blocks would. */
class Shell {
  private out = '';
  private readonly bash: ChildProcess;
  private seq = 0;

  constructor(cwd: string) {
    this.bash = spawn('bash', ['--norc', '--noprofile'], {
      cwd,
      detached: true,
      env: { PATH: process.env.PATH!, HOME: cwd, LANG: 'C.UTF-8', TERM: 'dumb' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.bash.stdout!.on('data', (d: Buffer) => (this.out += d));
    this.bash.stderr!.on('data', (d: Buffer) => (this.out += d));
    // As a script runs it: no aliases.
    this.bash.stdin!.write('exec 2>&1\n');
  }

  /** Runs one command; a background one writes to a log of its own, as a second terminal would show. */
  async run(text: string, ms = 120_000): Promise<{ code: number; output: string }> {
    const id = ++this.seq;
    const background = /&\s*(#.*)?$/.test(text);
    const redirect = background ? `>bg-${id}.log 2>&1` : '';
    const from = this.out.length;
    this.bash.stdin!.write(`{ ${text}\n} ${redirect}; printf '\\n::done ${id} %d\\n' $?\n`);
    const marker = new RegExp(`\\n::done ${id} (\\d+)\\n`);
    const deadline = Date.now() + ms;
    for (;;) {
      const m = marker.exec(this.out.slice(from));
      if (m) return { code: Number(m[1]), output: this.out.slice(from, from + m.index) };
      if (this.bash.exitCode !== null) throw new Error(`the shell exited:\n${this.out.slice(from)}`);
      if (Date.now() > deadline) throw new Error(`no end after ${ms} ms:\n${this.out.slice(from)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Ends the shell and whatever it left running in the background. */
  close(): void {
    try {
      process.kill(-this.bash.pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
}

/**
 * The README's command blocks, run in order against `make dev ACME=1` on moved ports (the same
 * script, after the build `make test` did), each checked against what the README shows under it:
 * the README cannot drift from what rks does.
 */
describe('README', () => {
  let dev: ChildProcess;
  let devLog = '';
  let state: string;
  let shell: Shell;
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-readme-'));
  let edgePort: number;

  beforeAll(async () => {
    // Free ports now may be taken by another test before make dev binds them: it then says so
    // and exits, and starts again on other ports (at most 5 times).
    let rksPort = 0;
    for (let attempt = 1; ; attempt++) {
      rksPort = await freePort();
      const vaultPort = await freePortWith([0, 1]);
      const pebblePort = await freePortWith([0, 1, 53, 54]);
      const edgeHttp = await freePort();
      edgePort = await freePort();
      const taken = [rksPort, vaultPort, vaultPort + 1, pebblePort, pebblePort + 1, pebblePort + 53, pebblePort + 54, edgeHttp, edgePort];
      if (new Set(taken).size !== taken.length) continue;
      state = path.join(ROOT, `.dev-${rksPort}`);
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && (!k.startsWith('RKS_') || /^RKS_(VAULT|PEBBLE)_BIN$/.test(k))) env[k] = v;
      Object.assign(env, {
        ACME: '1',
        RKS_LISTEN: `127.0.0.1:${rksPort}`,
        RKS_DEV_VAULT_PORT: String(vaultPort),
        RKS_DEV_PEBBLE_PORT: String(pebblePort),
        RKS_DEV_EDGE_HTTP_PORT: String(edgeHttp),
      });
      devLog = '';
      dev = spawn(path.join(ROOT, 'scripts', 'dev.sh'), [], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      dev.stdout!.on('data', (d: Buffer) => (devLog += d));
      dev.stderr!.on('data', (d: Buffer) => (devLog += d));
      const deadline = Date.now() + 120_000;
      while (!devLog.includes('In another shell:') && dev.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (devLog.includes('In another shell:')) break;
      if (dev.exitCode === null) process.kill(-dev.pid!, 'SIGTERM');
      await new Promise((r) => (dev.exitCode === null ? dev.once('exit', r) : r(undefined)));
      fs.rmSync(state, { recursive: true, force: true });
      const lostRace = /is in use|did not start/.test(devLog);
      if (!lostRace || attempt >= 5) throw new Error(`make dev did not come up:\n${devLog}`);
    }
    // What the README itself says about moved ports.
    expect(devLog).toContain(`source .dev-${rksPort}/env`);
    shell = new Shell(cwd);
  }, 180_000);

  afterAll(async () => {
    shell?.close();
    if (dev && dev.exitCode === null) {
      const exited = new Promise((r) => dev.once('exit', r));
      process.kill(-dev.pid!, 'SIGTERM');
      await exited;
    }
    fs.rmSync(state, { recursive: true, force: true });
    fs.rmSync(cwd, { recursive: true, force: true });
  });

  /** The README's commands with its ports and state directory moved as it says. */
  const moved = (c: ReadmeCommand) => c.text.replaceAll('.dev/env', path.join(state, 'env')).replace(/\b8443\b/g, String(edgePort));

  const check = async (section: string) => {
    const blocks = readmeBlocks(README).filter((b) => b.section === section && b.lang === 'sh');
    expect(blocks.length).toBeGreaterThan(0);
    for (const c of blocks.flatMap(readmeCommands)) {
      const { code, output } = await shell.run(moved(c));
      const where = `README.md:${c.line}: ${c.text}\n--- printed (exit ${code}):\n${output}`;
      if (!showsFailure(c.shown)) expect([where, code]).toEqual([where, 0]);
      const pattern = shownPattern(c.shown);
      if (pattern) expect([where, pattern.test(output.replace(/\s+/g, ''))]).toEqual([where, true]);
    }
  };

  it.each(SECTIONS)('%s: every command does what the README shows', async (section) => check(section), 240_000);

  it('make dev logs no error or fatal line through the whole walk-through (what precedes init is a warning)', () => {
    const levels = [...devLog.matchAll(/^\{"level":"(\w+)".*$/gm)];
    expect(levels.length).toBeGreaterThan(5);
    expect(levels.filter((m) => /error|fatal/.test(m[1])).map((m) => m[0])).toEqual([]);
  });

  it('the SDK example runs as written, as an ES module against the packed rks-node', async () => {
    const sdk = path.join(ROOT, 'sdk');
    if (!fs.existsSync(path.join(sdk, 'dist'))) execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: sdk });
    const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', cwd], { cwd: sdk, encoding: 'utf8' }).trim().split('\n').pop()!;
    const project = path.join(cwd, 'sdk-example');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), '{"name": "edge", "private": true}\n');
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(cwd, tarball)], { cwd: project, stdio: 'ignore' });

    const block = readmeBlocks(README).find((b) => b.section === 'Running an edge node' && b.lang === 'js');
    expect(block?.body).toContain("from 'rks-node'");
    // The package's own README shows the same example, and ships in the package.
    const sdkReadme = readmeBlocks(fs.readFileSync(path.join(sdk, 'README.md'), 'utf8')).filter((b) => b.lang === 'js');
    expect(sdkReadme.map((b) => b.body)).toEqual([block!.body]);
    expect(execFileSync('tar', ['tzf', path.join(cwd, tarball)], { encoding: 'utf8' })).toContain('package/README.md');
    const env = Object.fromEntries(
      fs.readFileSync(path.join(state, 'env'), 'utf8').split('\n').flatMap((l) => {
        const m = /^export (\w+)=(.*)$/.exec(l);
        return m ? [[m[1], m[2]]] : [];
      }),
    );
    const port = await freePort();
    // The example's placeholders for this machine's rks, its CA, the ACME section's group token and a free port.
    let code = block!.body;
    for (const [from, to] of [
      ["'https://rks.internal:8080'", JSON.stringify(env.RKS_URL)],
      ["'/etc/rks/ca.pem'", JSON.stringify(env.RKS_CA_CERT)],
      ["'/etc/rks/group.token'", JSON.stringify(path.join(cwd, 'acme-edge.token'))],
      ['server.listen(443)', `server.listen(${port})`],
    ]) {
      expect(code.split(from).length).toBe(2);
      code = code.replace(from, to);
    }
    fs.writeFileSync(path.join(project, 'edge.mjs'), code);
    let log = '';
    const edge = spawn(process.execPath, ['edge.mjs'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
    edge.stdout!.on('data', (d: Buffer) => (log += d));
    edge.stderr!.on('data', (d: Buffer) => (log += d));
    try {
      const ca = fs.readFileSync(path.join(cwd, 'pebble-root.pem'));
      const deadline = Date.now() + 15_000;
      let answer = '';
      while (!answer) {
        answer = await new Promise<string>((resolve) => {
          const socket = tls.connect({ port, host: '127.0.0.1', servername: 'www.example.com', ca }, () => socket.write('GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n'));
          let body = '';
          socket.on('data', (d) => (body += d));
          socket.on('end', () => resolve(body));
          socket.on('error', () => resolve(''));
        });
        if (!answer && (edge.exitCode !== null || Date.now() > deadline)) throw new Error(`the SDK example did not serve www.example.com:\n${log}`);
        if (!answer) await new Promise((r) => setTimeout(r, 200));
      }
      expect(answer).toMatch(/^HTTP\/1\.1 200[\s\S]*\r\n\r\nhello\n$/);
      expect(log).toMatch(/key for www\.example\.com: 60 s, fetched in \d+ ms/);
    } finally {
      edge.kill('SIGTERM');
    }
  }, 120_000);
});
