import fs from 'node:fs';
import path from 'node:path';
import { edgeCommand } from '../src/cli/edge';
import { serveCommand } from '../src/cli/serve';
import { EDGE_SETTINGS, SETTINGS, SettingSpec, settingDefaults } from '../src/settings';
import { EDGE_END, EDGE_START, END, START, withTable } from '../scripts/readme-settings';

const README = fs.readFileSync(path.resolve(__dirname, '..', 'README.md'), 'utf8');
const specs = Object.entries(SETTINGS) as [string, SettingSpec<unknown>][];

/** Every setting of rks serve is declared once (src/settings.ts); the rest follows from it. */
describe('settings', () => {
  it("the README's table is the one the declarations make (make readme writes it)", () => {
    for (const marker of [START, END, EDGE_START, EDGE_END]) expect(README).toContain(marker);
    expect(withTable(README) === README ? 'up to date' : 'README.md is stale: run make readme').toBe('up to date');
  });

  it.each([
    ['rks serve', serveCommand, specs],
    ['rks edge', edgeCommand, Object.entries(EDGE_SETTINGS) as [string, SettingSpec<unknown>][]],
  ] as const)('%s has each declared setting as an option with its variable and default', (_name, command, declared) => {
    const options = command().options;
    for (const [key, s] of declared) {
      // `--listen` and `--no-listen` set one attribute: the declared flag is the one looked at.
      const o = options.find((x) => x.attributeName() === key && x.flags === s.flag);
      expect([key, o?.flags]).toEqual([key, s.flag]);
      if (!s.toggle) expect([key, o?.envVar]).toEqual([key, s.env]);
      if (typeof s.default !== 'function') expect([key, o?.defaultValue]).toEqual([key, s.default]);
    }
  });

  it('each flag and variable is used once, and each variable is the flag in RKS_ form (but the CA file)', () => {
    const flags = specs.map(([, s]) => s.flag.split(' ')[0]);
    const envs = specs.map(([, s]) => s.env);
    expect(new Set(flags).size).toBe(flags.length);
    expect(new Set(envs).size).toBe(envs.length);
    for (const [, s] of specs) {
      const expected = `RKS_${s.flag.split(' ')[0]!.slice(2).toUpperCase().replace(/-/g, '_')}`;
      if (s.env !== expected) expect([s.flag, s.env]).toEqual(['--ca-cert <file>', 'RKS_CA_CERT_FILE']);
    }
  });

  it('defaults pass their own parser', () => {
    const defaults = settingDefaults() as Record<string, unknown>;
    for (const [key, s] of specs) if (s.parse && typeof defaults[key] === 'number') expect(s.parse(String(defaults[key]))).toBe(defaults[key]);
  });
});
