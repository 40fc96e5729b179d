/**
 * SIGTERM and SIGINT on a real `esper` process: the run stops at the next safe point, writes
 * what exists marked as interrupted and exits 130; a second signal exits at once with 130.
 * The test waits on the child's output lines, never on a sleep.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEsper, type EsperProcess } from '../support/esper-process.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-cli-signals-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function esper(args: readonly string[], varDir: string): EsperProcess {
  return startEsper(args, { ESPER_STORAGE_VAR_DIR: varDir });
}

describe('esper signals', () => {
  it('esper run: SIGTERM stops at the next safe point, writes the record and report marked interrupted, exits 130', async () => {
    const config = path.join(root, 'long.json');
    await writeFile(config, JSON.stringify({ dataset: 'spirals', hidden: [8], epochs: 1000, batchSize: 64 }));
    const out = path.join(root, 'run-out');
    const child = esper(['run', '--config', config, '--out', out], path.join(root, 'var-run'));
    await child.waitFor(/^epoch 1\/1000: train loss/m);
    child.process.kill('SIGTERM');
    const { code } = await child.exit;
    expect(code, child.stderr()).toBe(130);
    expect(child.stderr()).toContain('SIGTERM: stopping at the next safe point');
    const record = JSON.parse(await readFile(path.join(out, 'record.json'), 'utf8')) as {
      interrupted: boolean;
      report: { baseline?: unknown };
    };
    expect(record.interrupted).toBe(true);
    expect(record.report.baseline).toBeUndefined();
    expect(await readFile(path.join(out, 'report.md'), 'utf8')).toContain('**Interrupted** (SIGINT/SIGTERM)');
  }, 180_000);

  it('esper train: SIGTERM writes a checkpoint and exits 130, like SIGINT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const child = esper(['train', '--dataset', 'xor', '--epochs', '100000', '--run-id', `sig-${signal}`], path.join(root, 'var-train'));
      await child.waitFor(/^epoch 1\/100000: train loss/m);
      child.process.kill(signal);
      const { code } = await child.exit;
      expect(code, child.stderr()).toBe(130);
      expect(child.stderr()).toContain(`${signal}: stopping at the next safe point`);
      expect(child.stderr()).toContain(`continue with --resume sig-${signal}`);
    }
  }, 180_000);

  it('a second signal exits at once with 130', async () => {
    const child = esper(['train', '--dataset', 'xor', '--epochs', '100000', '--run-id', 'sig-twice'], path.join(root, 'var-twice'));
    await child.waitFor(/^epoch 1\/100000: train loss/m);
    // Two different signals: the kernel merges a pending signal with a second of the same kind.
    child.process.kill('SIGTERM');
    child.process.kill('SIGINT');
    const { code } = await child.exit;
    expect(code, child.stderr()).toBe(130);
    // Both may be pending at once; the kernel then delivers the lower-numbered (SIGINT) first.
    expect(child.stderr()).toMatch(/SIG(INT|TERM) again: exiting now/);
    expect(child.stderr()).not.toContain('continue with --resume');
  }, 180_000);
});
