import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(__dirname, '..', 'src');

/**
 * The layers of src/, lowest first: a folder (or top-level file) may import only from layers
 * below its own. A new folder must be placed here before it can be imported from.
 */
const LAYERS: string[][] = [
  ['errors', 'paths', 'address', 'log', 'metrics', 'concurrency', 'sdk'],
  ['names'],
  ['vault'],
  ['records'],
  ['pki'],
  ['secrets'],
  ['acme', 'callback', 'admin'],
  ['managed'],
  ['nodes'],
  ['groups'],
  ['init'],
  ['migrate', 'http', 'background', 'settings'],
  ['config'],
  ['routes'],
  ['server'],
  ['edge'],
  ['cli', 'index'],
];

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every relative import of a file (static, re-export, dynamic, require), resolved to a file. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^import\s+)'(\.[^']*)'/gm)].map((m) => m[1]!);
  return specs.map((s) => {
    const base = path.resolve(path.dirname(file), s);
    for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(candidate)) return candidate;
    throw new Error(`${path.relative(SRC, file)} imports '${s}', which is not a source file`);
  });
}

const unitOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!.replace(/\.ts$/, '');
const files = sources(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

/** Import cycles between files (Tarjan's strongly connected components of more than one file). */
function cycles(): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      for (let w = ''; w !== v; ) component.push((w = stack.pop()!));
      if (component.length > 1) found.push(component.map((f) => path.relative(SRC, f)).sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return found;
}

describe('the import graph of src/', () => {
  const layer = new Map(LAYERS.flatMap((units, i) => units.map((u) => [u, i] as const)));

  it('places every folder and top-level file in a layer', () => {
    expect([...new Set(files.map(unitOf))].filter((u) => !layer.has(u))).toEqual([]);
  });

  it('has no arrow from a layer to its own or a higher one (no upward arrow, no cycle between folders)', () => {
    const upward = [...graph].flatMap(([from, tos]) =>
      tos
        .filter((to) => unitOf(to) !== unitOf(from) && layer.get(unitOf(to))! >= layer.get(unitOf(from))!)
        .map((to) => `${path.relative(SRC, from)} -> ${path.relative(SRC, to)}`),
    );
    expect(upward).toEqual([]);
  });

  it('has no import cycle between files', () => {
    expect(cycles()).toEqual([]);
  });

  it('builds the server without what only a command uses (the classic migration is rks migrate\'s own)', () => {
    const reached = new Set<string>();
    const visit = (f: string) => {
      if (reached.has(f)) return;
      reached.add(f);
      for (const to of graph.get(f) ?? []) visit(to);
    };
    visit(path.join(SRC, 'server', 'bootstrap.ts'));
    expect(reached.size).toBeGreaterThan(20);
    expect([...reached].map((f) => path.relative(SRC, f)).filter((f) => f.startsWith('migrate') || f.startsWith('cli'))).toEqual([]);
  });

  /** Each record rks keeps in Vault, by the kvPath names of its paths, and the one module that names them. */
  const OWNERS: Record<string, string[]> = {
    'records/secrets.ts': ['secret', 'managedSecret'],
    'records/groups.ts': ['groupConfig', 'groupRevokedNode', 'groupRevokedNodes'],
    'records/nodes.ts': ['groupNode', 'groupNodes'],
  };

  it.each(Object.entries(OWNERS))('names the records %s owns in Vault there alone (how a record is stored changes in one place)', (file, names) => {
    const owner = path.join(SRC, file);
    const naming = new RegExp(`kvPath\\.(${names.join('|')})\\(`);
    const others = files.filter((f) => f !== owner && naming.test(fs.readFileSync(f, 'utf8')));
    expect(others.map((f) => path.relative(SRC, f))).toEqual([]);
    for (const name of names) expect(fs.readFileSync(owner, 'utf8')).toContain(`kvPath.${name}(`);
  });

  it("branches on what Vault's answer means outside the Vault layer, not on its HTTP statuses (vault/client.ts names the outcomes)", () => {
    const reading = files.filter((f) => !/^(vault|http)\//.test(path.relative(SRC, f)) && /isVaultError\(|instanceof VaultError/.test(fs.readFileSync(f, 'utf8')));
    expect(reading.map((f) => path.relative(SRC, f))).toEqual([]);
  });

  it('catches what it looks for', () => {
    // The checks above, against a graph known to be wrong: a cycle through two files.
    const a = path.join(SRC, 'a.ts');
    const b = path.join(SRC, 'b.ts');
    graph.set(a, [b]);
    graph.set(b, [a]);
    files.push(a, b);
    try {
      expect(cycles()).toEqual([['a.ts', 'b.ts']]);
    } finally {
      graph.delete(a);
      graph.delete(b);
      files.splice(-2);
    }
  });
});
