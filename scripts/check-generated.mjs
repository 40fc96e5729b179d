#!/usr/bin/env node
// Regenerates the Leyline bindings into a temporary directory and fails if they differ
// from the committed src/leyline/gen (someone edited generated code, or forgot `npm run gen`).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const committed = path.join(root, 'src/leyline/gen');
const scratch = mkdtempSync(path.join(tmpdir(), 'esper-gen-'));

function list(dir, base = dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? list(full, base) : [path.relative(base, full)];
  });
}

try {
  execFileSync(path.join(root, 'node_modules/.bin/buf'), ['generate', '-o', scratch], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, PATH: `${path.join(root, 'node_modules/.bin')}${path.delimiter}${process.env.PATH ?? ''}` },
  });
  const fresh = path.join(scratch, 'src/leyline/gen');
  const a = new Set(list(committed));
  const b = new Set(list(fresh));
  const problems = [];
  for (const file of b) {
    if (!a.has(file)) problems.push(`missing from src/leyline/gen: ${file}`);
    else if (!readFileSync(path.join(committed, file)).equals(readFileSync(path.join(fresh, file)))) {
      problems.push(`stale or hand-edited: src/leyline/gen/${file}`);
    }
  }
  for (const file of a) if (!b.has(file)) problems.push(`not generated from proto/: src/leyline/gen/${file}`);
  if (problems.length > 0) {
    console.error(`Generated Leyline code is out of date — run \`npm run gen\`:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  } else {
    console.log(`generated code up to date (${b.size} files)`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
