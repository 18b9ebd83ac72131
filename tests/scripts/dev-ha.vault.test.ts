import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, freePortWith } from '../support/vault';

const ROOT = path.resolve(__dirname, '..', '..');

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Processes whose command line names `text`. */
function processesNaming(text: string): string[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
        return cmd.includes(text) ? [`${d}: ${cmd}`] : [];
      } catch {
        return [];
      }
    });
}

async function health(addr: string): Promise<number> {
  try {
    return (await fetch(`${addr}/v1/sys/health`)).status;
  } catch {
    return 0;
  }
}

/**
 * make dev-ha on moved ports: a node the user kills and starts again (`start-node`) is tracked,
 * and Ctrl-C ends every process it started, that node included, and removes the cluster's data.
 */
describe('make dev-ha', () => {
  let dev: ChildProcess;
  let log = '';
  let base: number;
  let state: string;
  const env = () => {
    const e: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && (!k.startsWith('RKS_') || k === 'RKS_VAULT_BIN')) e[k] = v;
    return e;
  };

  afterAll(() => {
    if (dev?.exitCode === null) process.kill(-dev.pid!, 'SIGKILL');
    for (const p of processesNaming(state ?? '/nonexistent/')) process.kill(Number(p.split(':')[0]), 'SIGKILL');
    if (state) fs.rmSync(state, { recursive: true, force: true });
  });

  it('tracks a node started again and stops everything on Ctrl-C', async () => {
    // Ports free now may be taken by another test first: make dev-ha then says so and exits,
    // and starts again on other ports (at most 5 times).
    for (let attempt = 1; ; attempt++) {
      base = await freePortWith([0, 1, 2, 3, 4, 5]);
      const rksPorts = [await freePort(), await freePort()];
      if (rksPorts[0] === rksPorts[1] || rksPorts.some((p) => p >= base && p <= base + 5)) continue;
      state = path.join(ROOT, `.dev-ha-${base}`);
      log = '';
      dev = spawn(path.join(ROOT, 'scripts', 'dev-ha.sh'), [], {
        cwd: ROOT,
        detached: true,
        env: { ...env(), RKS_DEV_VAULT_PORT: String(base), RKS_DEV_HA_PORTS: rksPorts.join(' ') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      dev.stdout!.on('data', (d) => (log += d));
      dev.stderr!.on('data', (d) => (log += d));
      const deadline = Date.now() + 120_000;
      while (!log.includes('In another shell:') && dev.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      if (log.includes('In another shell:')) break;
      if (dev.exitCode === null) process.kill(-dev.pid!, 'SIGINT');
      await new Promise((r) => (dev.exitCode === null ? dev.once('exit', r) : r(undefined)));
      fs.rmSync(state, { recursive: true, force: true });
      if (!/is in use/.test(log) || attempt >= 5) throw new Error(`make dev-ha did not come up:\n${log}`);
    }
    expect(log).toContain(`RKS_DEV_VAULT_PORT=${base} scripts/dev-ha.sh start-node 1`);
    const node1 = `http://127.0.0.1:${base}`;
    const first = Number(fs.readFileSync(path.join(state, 'node1', 'pid'), 'utf8'));
    process.kill(first, 'SIGTERM');
    while (alive(first)) await new Promise((r) => setTimeout(r, 100));

    const startNode = () =>
      spawnSync(path.join(ROOT, 'scripts', 'dev-ha.sh'), ['start-node', '1'], { cwd: ROOT, env: { ...env(), RKS_DEV_VAULT_PORT: String(base) }, encoding: 'utf8' });
    const started = startNode();
    expect([started.status, started.stderr]).toEqual([0, expect.stringContaining('node1 started again')]);
    const again = Number(fs.readFileSync(path.join(state, 'node1', 'pid'), 'utf8'));
    expect(again).not.toBe(first);
    // Unsealed: it answers as a standby (429) or, if it won an election, as the active node.
    let status = 0;
    for (let i = 0; i < 100 && ![200, 429].includes(status); i++) {
      status = await health(node1);
      if (![200, 429].includes(status)) await new Promise((r) => setTimeout(r, 200));
    }
    expect([200, 429]).toContain(status);
    expect(startNode()).toMatchObject({ status: 1, stderr: expect.stringContaining('running already') });

    const exited = new Promise((r) => dev.once('exit', r));
    process.kill(-dev.pid!, 'SIGINT'); // Ctrl-C: the terminal signals the foreground group
    await exited;
    expect(alive(again)).toBe(false);
    expect(processesNaming(state)).toEqual([]);
    const left = execFileSync('find', [state, '-type', 'f'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(left.length).toBeGreaterThan(0);
    expect(left.filter((f) => !f.endsWith('.log'))).toEqual([]);
    expect(fs.existsSync(path.join(state, 'node1', 'data'))).toBe(false);
  }, 240_000);
});
