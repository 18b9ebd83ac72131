import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const UNITS = path.resolve(__dirname, '../../deploy/systemd');
const BIN = path.resolve(__dirname, '../../bin/rks');
const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => fs.existsSync(p));

/** The units in deploy/systemd as systemd reads them: no unknown key, no bad value, a command that exists. */
describe('systemd units', () => {
  const units = fs.readdirSync(UNITS).filter((f) => f.endsWith('.service'));

  it('ships one for rks serve and one for rks edge', () => {
    expect(units.sort()).toEqual(['rks-edge.service', 'rks.service']);
  });

  it.each(units)('%s passes systemd-analyze verify without a warning', (unit) => {
    if (!analyze) throw new Error('systemd-analyze is not installed (Debian: systemd): the units cannot be checked');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-units-'));
    // Checked against this checkout's rks instead of an installed one (tests/cli/install.vault.test.ts checks the installed units).
    fs.writeFileSync(path.join(dir, unit), fs.readFileSync(path.join(UNITS, unit), 'utf8').replaceAll('ExecStart=rks ', `ExecStart=${BIN} `));
    const out = spawnSync(analyze, ['verify', '--man=no', path.join(dir, unit)], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect({ status: out.status, stderr: out.stderr.trim() }).toEqual({ status: 0, stderr: '' });
  });

  it('starts rks as systemd finds it wherever npm install -g put it (/usr/bin or /usr/local/bin), with settings that exist', () => {
    for (const unit of units) {
      const text = fs.readFileSync(path.join(UNITS, unit), 'utf8');
      expect(text.match(/^ExecStart=.*$/gm)).toEqual([expect.stringMatching(/^ExecStart=rks /)]);
      const exec = /^ExecStart=rks (\w+)(.*)$/m.exec(text)!;
      const help = spawnSync(process.execPath, [BIN, exec[1]!, '--help'], { encoding: 'utf8' }).stdout;
      for (const flag of exec[2]!.match(/--[a-z-]+/g) ?? []) expect(help).toContain(flag);
    }
  });
});
