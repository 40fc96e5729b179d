import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { parseTrainArguments, runTrain, UsageError } from '../../src/cli/train.js';
import { loadSettings } from '../../src/core/index.js';

function capture() {
  const out = { stdout: '', stderr: '' };
  const io = {
    stdout: { write: (chunk: string) => (out.stdout += chunk) },
    stderr: { write: (chunk: string) => (out.stderr += chunk) },
  };
  return { out, io };
}

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
      resume: false,
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
  it('trains, checkpoints, resumes for more epochs, and refuses to mix runs in one checkpoint directory', async () => {
    const base = ['--dataset', 'xor', '--epochs', '2', '--batch-size', '50', '--lr', '0.01', '--checkpoint-dir', dir, '--seed', '3'];
    const first = capture();
    expect(await runTrain([...base, '--json', '--run-id', 'cli-run'], first.io, { settings })).toBe(0);
    const summary = JSON.parse(first.out.stdout) as {
      state: string;
      epochsCompleted: number;
      globalStep: number;
      checkpointsWritten: number;
      trainingRunId: string;
    };
    expect(summary).toMatchObject({
      state: 'completed',
      epochsCompleted: 2,
      globalStep: 40,
      checkpointsWritten: 2,
      trainingRunId: 'cli-run',
    });
    expect(first.out.stderr).toMatch(/epoch 1\/2: train loss [\d.]+ acc [\d.]+ % \| validation loss [\d.]+ acc [\d.]+ %/);
    expect(first.out.stderr).not.toContain('\r'); // no progress bar off a TTY

    const resumed = capture();
    expect(await runTrain([...base.map((a) => (a === '2' ? '3' : a)), '--resume'], resumed.io, { settings })).toBe(0);
    expect(resumed.out.stderr).toContain('resumed from step 40 (epoch 1, example 1000)');
    expect(resumed.out.stdout).toContain('run          cli-run (completed)');
    expect(resumed.out.stdout).toContain('epochs       3, 60 steps');

    const mixed = capture();
    expect(await runTrain(base, mixed.io, { settings })).toBe(2);
    expect(mixed.out.stderr).toContain('already holds checkpoints of run cli-run');
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
  });

  it('reports --resume without a checkpoint as an error', async () => {
    const { out, io } = capture();
    expect(await runTrain(['--dataset', 'xor', '--checkpoint-dir', dir, '--resume'], io, { settings })).toBe(1);
    expect(out.stderr).toMatch(/no checkpoint to resume from .* \[ESPER_TOLARIA_CHECKPOINT_NOT_FOUND\]/);
  });
});
