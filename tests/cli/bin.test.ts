import { execFileSync } from 'node:child_process';
import path from 'node:path';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'rks');

describe('bin/rks', () => {
  it('runs as an executable through its #! line (with its heap flags) and prints its version', () => {
    const out = execFileSync(BIN, ['--version'], { encoding: 'utf8' });
    expect(out.trim()).toBe(require('../../package.json').version);
  });
});

describe('rks completion', () => {
  const complete = (words: string[]) =>
    execFileSync('bash', ['-c', `source <("${BIN}" completion bash); COMP_WORDS=(${words.map((w) => `"${w}"`).join(' ')}); COMP_CWORD=${words.length - 1}; _rks; echo "\${COMPREPLY[@]}"`], {
      encoding: 'utf8',
    }).trim();

  it('completes commands, subcommands and options in bash, past positional arguments', () => {
    expect(complete(['rks', 'gr'])).toBe('group');
    expect(complete(['rks', 'acme', 'issuer', '']).split(' ')).toEqual(expect.arrayContaining(['create', 'list', 'info', 'deactivate']));
    expect(complete(['rks', 'group', 'create', 'edge', '--sa'])).toBe('--save');
  });

  it('refuses shells it has no script for (exit 2)', () => {
    expect(() => execFileSync(BIN, ['completion', 'fish'], { stdio: 'pipe' })).toThrow(expect.objectContaining({ status: 2 }));
  });
});
