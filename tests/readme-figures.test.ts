import fs from 'node:fs';
import path from 'node:path';
import { END, START, measured, quotedNumbers } from '../scripts/readme-figures';

const ROOT = path.resolve(__dirname, '..');

/** The package figures the README quotes are what the packages are now (`make readme` writes them). */
describe('the README\'s package figures', () => {
  it('match the node SDK\'s package and the server\'s installed dependencies as measured now, within a tenth', () => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) throw new Error('dist/ is missing: make build first');
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const quoted = readme.slice(readme.indexOf(START) + START.length, readme.indexOf(END));
    // Within a tenth (a line of the SDK more or less moves a kilobyte): when this fails, make readme.
    const now = measured();
    const said = quotedNumbers(quoted);
    expect(said).toHaveLength(4);
    said.forEach((n, i) => expect([i, Math.abs(n - now[i]!) <= Math.max(1, now[i]! * 0.1)]).toEqual([i, true]));
  }, 60_000);
});
