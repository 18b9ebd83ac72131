import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** The node SDK ships as its own package (sdk/): edges install it without the server's dependencies. */
describe('the rks-node package', () => {
  it('declares no dependency at all', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'sdk', 'package.json'), 'utf8'));
    expect(pkg.name).toBe('rks-node');
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) expect(pkg[field]).toBeUndefined();
    expect(pkg.version).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('its sources import only Node built-ins and each other', () => {
    const dir = path.join(ROOT, 'src', 'sdk');
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const imports = [...fs.readFileSync(path.join(dir, file), 'utf8').matchAll(/(?:from|import|require\()\s*'([^']+)'/g)].map((m) => m[1]);
      for (const spec of imports) expect([file, spec]).toEqual([file, expect.stringMatching(/^(node:|\.\/)/)]);
    }
  });
});
