// make readme: writes into README.md, between the markers, the package figures it quotes, measured
// here: the node SDK's package (packed and installed) and the server's installed dependencies;
// tests/readme-figures.test.ts fails while the README says otherwise.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
export const START = '<!-- figures: written by `make readme` -->';
export const END = '<!-- /figures -->';

/** What `npm pack` makes of a folder: the tarball's and the unpacked files' bytes. */
function packed(dir: string): { size: number; unpackedSize: number } {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [p] = JSON.parse(out) as { size: number; unpackedSize: number }[];
  return { size: p!.size, unpackedSize: p!.unpackedSize };
}

/** Bytes of the files under `dir`, nested node_modules left to their own count. */
function bytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += e.name === 'node_modules' ? 0 : bytes(p);
    else if (e.isFile()) n += fs.statSync(p).size;
  }
  return n;
}

/** The server's production dependencies as installed here: how many packages, how many bytes. */
function dependencies(): { packages: number; bytes: number } {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const dirs = [...new Set(out.split('\n').filter(Boolean))].filter((d) => d !== ROOT);
  return { packages: dirs.length, bytes: dirs.reduce((s, d) => s + bytes(d), 0) };
}

/** The four numbers the README quotes, measured now: SDK tarball KB, SDK installed KB, server packages, server MB. */
export function measured(): number[] {
  const sdk = packed(path.join(ROOT, 'sdk'));
  const server = packed(ROOT);
  const deps = dependencies();
  return [Math.round(sdk.size / 1024), Math.round(sdk.unpackedSize / 1024), deps.packages + 1, Math.round((deps.bytes + server.unpackedSize) / 1024 / 1024)];
}

/** The sentence the README quotes. */
export function figures(n = measured()): string {
  return `${n[0]} KB; installed, one package of ${n[1]} KB, against ${n[2]} packages and ${n[3]} MB for the whole server package`;
}

/** The numbers of a sentence `figures` wrote. */
export function quotedNumbers(sentence: string): number[] {
  return (sentence.match(/\d+/g) ?? []).map(Number);
}

export function withFigures(readme: string, text = figures()): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${START} … ${END} block`);
  return `${readme.slice(0, a + START.length)}${text}${readme.slice(b)}`;
}

if (require.main === module) {
  const file = path.join(ROOT, 'README.md');
  fs.writeFileSync(file, withFigures(fs.readFileSync(file, 'utf8')));
}
