import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** make dev starts at once: its ports checked before anything is built, and nothing built that is up to date. */
describe('make dev', () => {
  it('says a port in use before it builds anything', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      // What would build, if dev.sh got that far, says so instead.
      const out = spawnSync(path.join(ROOT, 'scripts', 'dev.sh'), [], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', RKS_LISTEN: `127.0.0.1:${port}`, RKS_DEV_VAULT_PORT: String(port), MAKE: 'echo BUILD-CALLED' },
        timeout: 20_000,
      });
      expect(out.status).toBe(1);
      expect(out.stderr).toContain(`port ${port} is in use`);
      expect(`${out.stdout}${out.stderr}`).not.toContain('BUILD-CALLED');
    } finally {
      taken.close();
    }
  });

  it('leaves the build to dev.sh, after its port check: make dev itself compiles nothing first', () => {
    // Read, not run: `make -n dev` would start it (its recipe calls make).
    const dev = /^dev:([^#\n]*)/m.exec(fs.readFileSync(path.join(ROOT, 'Makefile'), 'utf8'));
    expect(dev).not.toBeNull();
    expect(dev![1]!.split(/\s+/).filter(Boolean)).not.toContain('build');
  });

  it('builds nothing when no source changed since the last build', () => {
    // make test built just before: the build is up to date (make -q answers 0).
    expect(spawnSync('make', ['-q', 'build'], { cwd: ROOT }).status).toBe(0);
  });
});
