// make readme: writes the tables of `rks serve` and `rks edge` settings into README.md from their
// declarations (src/settings.ts), between the markers; tests/settings.test.ts fails while they differ.
import fs from 'node:fs';
import path from 'node:path';
import { EDGE_SETTINGS, SETTINGS, settingsTable } from '../src/settings';

export const START = '<!-- settings: written by `make readme` from src/settings.ts -->';
export const END = '<!-- /settings -->';
export const EDGE_START = '<!-- edge settings: written by `make readme` from src/settings.ts -->';
export const EDGE_END = '<!-- /edge settings -->';

function between(readme: string, start: string, end: string, table: string): string {
  const a = readme.indexOf(start);
  const b = readme.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md has no ${start} … ${end} block`);
  return `${readme.slice(0, a + start.length)}\n${table}\n${readme.slice(b)}`;
}

/** The README with both tables as the declarations make them. */
export function withTable(readme: string): string {
  return between(between(readme, START, END, settingsTable(SETTINGS)), EDGE_START, EDGE_END, settingsTable(EDGE_SETTINGS));
}

if (require.main === module) {
  const file = path.resolve(__dirname, '..', 'README.md');
  fs.writeFileSync(file, withTable(fs.readFileSync(file, 'utf8')));
}
