import fs from 'node:fs';
import path from 'node:path';
import { END, START, figures } from '../scripts/readme-figures';

const ROOT = path.resolve(__dirname, '..');

/** The package figures the README quotes are what the packages are now (`make readme` writes them). */
describe('the README\'s package figures', () => {
  it('match the node SDK\'s package and the server\'s installed dependencies as measured now', () => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) throw new Error('dist/ is missing: make build first');
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const quoted = readme.slice(readme.indexOf(START) + START.length, readme.indexOf(END));
    // When this fails: make readme.
    expect(quoted).toBe(figures());
  }, 60_000);
});
