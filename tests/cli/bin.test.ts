import { execFileSync } from 'node:child_process';
import path from 'node:path';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'rks');

describe('bin/rks', () => {
  it('runs as an executable through its #! line (with its heap flags) and prints its version', () => {
    const out = execFileSync(BIN, ['--version'], { encoding: 'utf8' });
    expect(out.trim()).toBe(require('../../package.json').version);
  });
});
