import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { parseTrainArguments, runTrain, UsageError } from '../../src/cli/train.js';
import { loadSettings } from '../../src/core/index.js';
import { capture } from './fixtures/capture.js';

const settings = loadSettings({ env: {} });
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esper-cli-train-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('esper train: arguments', () => {
  it('applies the documented defaults', () => {
    expect(parseTrainArguments([])).toMatchObject({
      host: 'mlp',
      dataset: 'mnist',
      epochs: 2,
      batchSize: 64,
      optimizer: 'adam',
      lr: 0.002,
      lrSchedule: 'cosine',
      seed: 0,
      resume: undefined,
      json: false,
    });
  });

  it.each([
    [['--epochs', '0'], /--epochs must be an integer ≥ 1/],
    [['--host', 'rnn'], /--host must be one of mlp, cnn/],
    [['--dataset', 'cifar10'], /needs --data-dir/],
    [['--optimizer', 'lion'], /--optimizer must be one of sgd, momentum, adam/],
    [['--lr=-1'], /--lr must be a number > 0/],
    [['--bogus'], /Unknown option/],
    [['--run-id', '../escape'], /--run-id must be letters, digits/],
    [['--resume', 'a b'], /--resume needs a run id, or a checkpoint directory/],
    [['--resume', './dir', '--checkpoint-dir', './other'], /to resume from a directory, pass it to --resume/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseTrainArguments(argv)).toThrow(UsageError);
    expect(() => parseTrainArguments(argv)).toThrow(message);
  });

  it('prints its usage for --help (through the top-level command) and exits 2 on a bad flag', async () => {
    const help = capture();
    expect(await main(['train', '--help'], help.io)).toBe(0);
    expect(help.out.stdout).toContain('esper train [options]');
    const bad = capture();
    expect(await main(['train', '--epochs', 'x'], bad.io)).toBe(2);
    expect(bad.out.stderr).toContain('--epochs must be an integer');
  });
});

describe('esper train: runs', () => {
  const varSettings = () => loadSettings({ env: { ESPER_STORAGE_VAR_DIR: dir } });
  const base = ['--dataset', 'xor', '--epochs', '2', '--batch-size', '50', '--lr', '0.01', '--seed', '3'];

  it('gives each run its own checkpoints: two runs back to back in one var dir both succeed, and a resume continues the first', async () => {
    const settings = varSettings();
    const first = capture();
    expect(await runTrain([...base, '--json', '--run-id', 'cli-run'], first.io, { settings })).toBe(0);
    const summary = JSON.parse(first.out.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({
      state: 'completed',
      epochsCompleted: 2,
      globalStep: 40,
      checkpointsWritten: 2,
      trainingRunId: 'cli-run',
    });
    expect(summary['checkpointLog']).toBe(path.join(dir, 'runs', 'cli-run', 'checkpoints', 'checkpoints.wal'));
    expect(first.out.stderr).toContain(`esper train: run cli-run — `);
    expect(first.out.stderr).toContain(`checkpoints in ${path.join(dir, 'runs', 'cli-run', 'checkpoints', 'checkpoints.wal')}`);
    expect(first.out.stderr).toMatch(/epoch 1\/2: train loss [\d.]+ acc [\d.]+ % \| validation loss [\d.]+ acc [\d.]+ %/);
    expect(first.out.stderr).not.toContain('\r'); // no progress bar off a TTY

    // A second run with a new id, in the same var dir.
    const second = capture();
    expect(await runTrain([...base, '--json'], second.io, { settings })).toBe(0);
    const secondRun = (JSON.parse(second.out.stdout) as { trainingRunId: string }).trainingRunId;
    expect(secondRun).toMatch(/^train-\d{8}-\d{6}-[0-9a-f]{4}$/);
    expect(second.out.stderr).toContain(`checkpoints in ${path.join(dir, 'runs', secondRun, 'checkpoints', 'checkpoints.wal')}`);

    const resumed = capture();
    expect(await runTrain([...base.map((a) => (a === '2' ? '3' : a)), '--resume', 'cli-run'], resumed.io, { settings })).toBe(0);
    expect(resumed.out.stderr).toContain('resumed from step 40 (epoch 1, example 1000)');
    expect(resumed.out.stdout).toContain('run          cli-run (completed)');
    expect(resumed.out.stdout).toContain('epochs       3, 60 steps');
  });

  it("refuses to mix runs: a new run where checkpoints exist, and a resume of another run's checkpoint (dependency guard)", async () => {
    const settings = varSettings();
    expect(await runTrain([...base, '--epochs', '1', '--run-id', 'run-a'], capture().io, { settings })).toBe(0);
    const again = capture();
    expect(await runTrain([...base, '--run-id', 'run-a'], again.io, { settings })).toBe(2);
    expect(again.out.stderr).toContain('already holds checkpoints of run run-a; resume it with --resume run-a');
    const other = capture();
    expect(await runTrain([...base, '--resume', 'run-a', '--run-id', 'run-b'], other.io, { settings })).toBe(1);
    expect(other.out.stderr).toMatch(/checkpoint belongs to run run-a, not run-b \[ESPER_CORE_DEPENDENCY_VIOLATION\]/);
  });

  it('stops at a step boundary when signalled, writes a checkpoint, and exits 130', async () => {
    const controller = new AbortController();
    controller.abort();
    const { out, io } = capture();
    const code = await runTrain(['--dataset', 'moons', '--epochs', '1', '--checkpoint-dir', dir, '--json'], io, {
      settings,
      signal: controller.signal,
    });
    expect(code).toBe(130);
    expect(JSON.parse(out.stdout)).toMatchObject({ state: 'aborted', globalStep: 0, checkpointsWritten: 1 });
    expect(out.stderr).toContain(`esper train: continue with --resume ${dir}`);
  });

  it('reports --resume of an unknown run as an error naming the directory, and creates nothing', async () => {
    const { out, io } = capture();
    expect(await runTrain(['--dataset', 'xor', '--resume', 'no-such-run'], io, { settings: varSettings() })).toBe(1);
    const missing = path.join(dir, 'runs', 'no-such-run', 'checkpoints');
    expect(out.stderr).toContain(`no checkpoints to resume from: ${missing} does not exist [ESPER_TOLARIA_CHECKPOINT_NOT_FOUND]`);
    expect(existsSync(path.join(dir, 'runs'))).toBe(false);
  });

  it('reports --resume without a checkpoint as an error naming the file', async () => {
    const { out, io } = capture();
    expect(await runTrain(['--dataset', 'xor', '--resume', dir], io, { settings })).toBe(1);
    expect(out.stderr).toContain(
      `no checkpoint to resume from in ${path.join(dir, 'checkpoints.wal')} [ESPER_TOLARIA_CHECKPOINT_NOT_FOUND]`,
    );
  });
});

describe('esper train: a damaged last checkpoint', () => {
  const base = ['--dataset', 'xor', '--epochs', '2', '--batch-size', '50', '--lr', '0.01', '--seed', '3'];

  /** Trains run `damaged` for two epochs (checkpoints at steps 20 and 40), then damages its log. */
  async function damagedRun(damage: (bytes: Buffer) => Buffer): Promise<{ file: string; settings: ReturnType<typeof loadSettings> }> {
    const settings = loadSettings({ env: { ESPER_STORAGE_VAR_DIR: dir } });
    expect(await runTrain([...base, '--run-id', 'damaged'], capture().io, { settings })).toBe(0);
    const file = path.join(dir, 'runs', 'damaged', 'checkpoints', 'checkpoints.wal');
    await writeFile(file, damage(await readFile(file)));
    return { file, settings };
  }

  it.each([
    [
      'one flipped byte inside the last record',
      (b: Buffer) => (b.writeUInt8(b.readUInt8(b.length - 100) ^ 0x04, b.length - 100), b),
      'crc',
    ],
    ['the last record cut mid-way', (b: Buffer) => b.subarray(0, b.length - 200), 'truncated'],
  ])('resumes from the previous checkpoint after %s, and says what it discarded (stderr and WARNING)', async (_what, damage, reason) => {
    const { file, settings } = await damagedRun(damage);
    const { out, io } = capture();
    expect(await runTrain([...base.map((a) => (a === '2' ? '3' : a)), '--resume', 'damaged'], io, { settings })).toBe(0);
    expect(out.stderr).toMatch(new RegExp(`! WARNING tolaria\\.checkpoint\\.discarded .*reason=${reason}.*record=2.*restored_step=20`));
    expect(out.stderr).toContain(`esper train: discarded checkpoint record 2 at offset `);
    expect(out.stderr).toContain(` of ${file} (`);
    expect(out.stderr).toMatch(new RegExp(`: ${reason} — .*; resuming from the checkpoint of step 20\n`));
    expect(out.stderr).toContain('resumed from step 20 (epoch 0, example 1000)');
    expect(out.stdout).toContain('epochs       3, 60 steps');
  });

  it('refuses to resume when no checkpoint verifies, with a typed error naming the file', async () => {
    const settings = loadSettings({ env: { ESPER_STORAGE_VAR_DIR: dir } });
    expect(await runTrain([...base, '--epochs', '1', '--run-id', 'only'], capture().io, { settings })).toBe(0);
    const file = path.join(dir, 'runs', 'only', 'checkpoints', 'checkpoints.wal');
    const bytes = await readFile(file);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0x04;
    await writeFile(file, bytes);
    const { out, io } = capture();
    expect(await runTrain([...base, '--resume', 'only'], io, { settings })).toBe(1);
    expect(out.stderr).toContain(`no valid checkpoint in ${file}: record 1 (crc) discarded [ESPER_TOLARIA_CHECKPOINT_CORRUPT]`);
  });
});
