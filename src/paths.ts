import fs from 'node:fs';
import path from 'node:path';

/** The package's root folder, whether code runs from src/ (tests) or dist/src/. */
export const PACKAGE_ROOT = (() => {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'openapi', 'rks.yaml'))) return dir;
  }
  throw new Error('rks package root (with openapi/rks.yaml) not found');
})();

export const SPEC_PATH = path.join(PACKAGE_ROOT, 'openapi', 'rks.yaml');

export const VERSION: string = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version;
