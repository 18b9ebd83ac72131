// make readme: writes the table of `rks serve` settings into README.md from their declarations
// (src/settings.ts), between the markers; tests/settings.test.ts fails while the two differ.
import fs from 'node:fs';
import path from 'node:path';
import { settingsTable } from '../src/settings';

export const START = '<!-- settings: written by `make readme` from src/settings.ts -->';
export const END = '<!-- /settings -->';

export function withTable(readme: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${START} … ${END} block`);
  return `${readme.slice(0, a + START.length)}\n${settingsTable()}\n${readme.slice(b)}`;
}

if (require.main === module) {
  const file = path.resolve(__dirname, '..', 'README.md');
  fs.writeFileSync(file, withTable(fs.readFileSync(file, 'utf8')));
}
