/**
 * Enforces the layout rules of spec 00 §7: a subsystem imports another only through its
 * `index.ts`, dependencies point downward, and there are no import cycles.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../src');

/** Layer of each subsystem: imports may go to the same or a lower layer, never higher. */
const LAYERS: Readonly<Record<string, number>> = {
  leyline: 0,
  core: 1,
  security: 2,
  oona: 3,
  tensor: 3,
  tolaria: 4,
  tamiyo: 4,
  kasmina: 4,
  simic: 4,
  karn: 4,
  tezzeret: 4,
  urza: 4,
  urabrask: 4,
  nissa: 4,
  weatherlight: 5,
  study: 5,
  cli: 6,
};

/** A source file longer than this holds more than one job (issue 11, "smaller rooms"). */
const MAX_SOURCE_LINES = 600;

/** Files exempt from the limit: data tables whose rows belong together. */
const DATA_TABLES: ReadonlySet<string> = new Set([
  // The 50 prototype blueprint descriptors and their parameter → knob mapping.
  'karn/catalog-data.ts',
]);

interface Graph {
  /** file (relative to src, posix) → imported files (relative to src, posix). */
  readonly edges: ReadonlyMap<string, readonly string[]>;
}

function listSources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) {
      if (name === 'gen') continue;
      out.push(...listSources(full));
    } else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
      out.push(full);
    }
  }
  return out;
}

const IMPORT_RE = /(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(source: string): string[] {
  const specs: string[] = [];
  for (const match of source.matchAll(IMPORT_RE)) {
    const spec = match[1] ?? match[2];
    if (spec !== undefined) specs.push(spec);
  }
  return specs;
}

function buildGraph(): Graph {
  const edges = new Map<string, string[]>();
  for (const file of listSources(SRC)) {
    const from = path.relative(SRC, file).split(path.sep).join('/');
    const targets = importsOf(readFileSync(file, 'utf8'))
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => {
        const resolved = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
        return path.relative(SRC, resolved).split(path.sep).join('/');
      });
    edges.set(from, targets);
  }
  return { edges };
}

const subsystemOf = (file: string): string => file.split('/')[0] ?? '';

/** Violations of the index-only and downward rules. */
export function layoutViolations(graph: Graph): string[] {
  const problems: string[] = [];
  for (const [from, targets] of graph.edges) {
    const fromSub = subsystemOf(from);
    if (!from.includes('/')) {
      problems.push(`${from}: source files live in a subsystem folder`);
      continue;
    }
    if (!(fromSub in LAYERS)) problems.push(`${from}: subsystem '${fromSub}' has no layer`);
    for (const to of targets) {
      const toSub = subsystemOf(to);
      if (toSub === fromSub) continue;
      if (to.startsWith('..')) {
        problems.push(`${from} imports ${to}, outside src/`);
        continue;
      }
      if (to !== `${toSub}/index.ts`) {
        problems.push(`${from} imports ${to}: other subsystems only through ${toSub}/index.ts`);
      }
      const fromLayer = LAYERS[fromSub];
      const toLayer = LAYERS[toSub];
      if (fromLayer !== undefined && toLayer !== undefined && toLayer > fromLayer) {
        problems.push(`${from} imports ${to}: ${fromSub} (layer ${fromLayer}) must not depend on ${toSub} (layer ${toLayer})`);
      }
    }
  }
  return problems;
}

/** Strongly connected components with more than one node (or a self-loop). */
export function cycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    indices.set(node, index);
    low.set(node, index);
    index += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node) ?? []) {
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, indices.get(next)!));
      }
    }
    if (low.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (edges.get(node) ?? []).includes(node)) found.push(component.sort());
    }
  };
  for (const node of edges.keys()) if (!indices.has(node)) visit(node);
  return found;
}

function subsystemEdges(graph: Graph): Map<string, string[]> {
  const edges = new Map<string, Set<string>>();
  for (const [from, targets] of graph.edges) {
    const fromSub = subsystemOf(from);
    const set = edges.get(fromSub) ?? new Set<string>();
    for (const to of targets) if (subsystemOf(to) !== fromSub) set.add(subsystemOf(to));
    edges.set(fromSub, set);
  }
  return new Map([...edges].map(([k, v]) => [k, [...v]]));
}

describe('source layout (spec 00 §7)', () => {
  const graph = buildGraph();

  it('finds the source tree', () => {
    expect(graph.edges.size).toBeGreaterThan(5);
    expect(graph.edges.has('core/index.ts')).toBe(true);
  });

  it('imports other subsystems only through their index.ts and only downward', () => {
    expect(layoutViolations(graph)).toEqual([]);
  });

  it('has no import cycle between files', () => {
    expect(cycles(graph.edges)).toEqual([]);
  });

  it('has no import cycle between subsystems', () => {
    expect(cycles(subsystemEdges(graph))).toEqual([]);
  });

  it('keeps every source file under the size limit (generated code and the listed data tables excepted)', () => {
    const oversized = listSources(SRC)
      .map((file) => ({ file: path.relative(SRC, file).split(path.sep).join('/'), lines: readFileSync(file, 'utf8').split('\n').length }))
      .filter(({ file, lines }) => lines > MAX_SOURCE_LINES && !DATA_TABLES.has(file))
      .map(({ file, lines }) => `${file}: ${lines} lines`);
    expect(oversized).toEqual([]);
    for (const table of DATA_TABLES) expect(graph.edges.has(table), `${table} is listed but gone`).toBe(true);
  });

  it('gives every subsystem folder an index.ts', () => {
    const subsystems = new Set([...graph.edges.keys()].map(subsystemOf));
    for (const sub of subsystems) expect(graph.edges.has(`${sub}/index.ts`), sub).toBe(true);
  });
});

describe('layout checker', () => {
  it('reports a deep import, an upward import and a cycle', () => {
    const edges = new Map<string, string[]>([
      ['core/a.ts', ['core/b.ts', 'security/signer.ts']],
      ['core/b.ts', ['core/a.ts']],
      ['security/index.ts', []],
      ['security/signer.ts', []],
    ]);
    const problems = layoutViolations({ edges });
    expect(problems.some((p) => p.includes('only through security/index.ts'))).toBe(true);
    expect(problems.some((p) => p.includes('must not depend on security'))).toBe(true);
    expect(cycles(edges)).toEqual([['core/a.ts', 'core/b.ts']]);
  });

  it('parses static, type-only, re-export and dynamic imports', () => {
    const src = `import { a } from './a.js';\nimport type { B } from "../b/index.js";\nexport * from './c.js';\nexport { d } from './d.js';\nconst e = await import('./e.js');\nimport './side.js';`;
    expect(importsOf(src)).toEqual(['./a.js', '../b/index.js', './c.js', './d.js', './e.js', './side.js']);
  });
});
