import { readFile, writeFile, mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, loadSettings, type EsperError, type EsperSettings } from '../../src/core/index.js';
import {
  forwardFlops,
  runStudy,
  STUDY_REPORT_SCHEMA_VERSION,
  trainingFlops,
  type StudyEvent,
  type StudyOptions,
} from '../../src/study/index.js';
import { TINY_TASK } from './fixtures/tiny-task.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
/** The grown arm in these tests is a TEST DOUBLE (no growth happens; see the fixture). */
const GROWN_TEST_DOUBLE = { module: path.join(fixtures, 'grown-arm-test-double.ts') };

describe('runStudy (child processes, resumable directory)', () => {
  let root: string;
  let settings: EsperSettings;
  let n = 0;
  const freshDir = (): string => path.join(root, `study-${(n += 1)}`);

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'esper-study-'));
    settings = loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'var') } } });
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const base = (directory: string): StudyOptions => ({
    task: TINY_TASK,
    seeds: 2,
    directory,
    settings,
    grownRunner: GROWN_TEST_DOUBLE,
    concurrency: 2,
  });

  it('runs every arm × seed in child processes and writes the report with statistics', async () => {
    const directory = freshDir();
    const events: StudyEvent[] = [];
    const result = await runStudy({ ...base(directory), onEvent: (e) => events.push(e) });
    expect(result.failures).toEqual([]);
    expect(result.runs.map((r) => `${r.arm}-${r.seed}`)).toEqual(['small-0', 'small-1', 'grown-0', 'grown-1', 'large-0', 'large-1']);
    expect(events.filter((e) => e.type === 'run_finished')).toHaveLength(6);
    expect(events.some((e) => e.type === 'run_progress' && e.step === TINY_TASK.steps)).toBe(true);
    expect(events[0]).toMatchObject({ type: 'study_started', runs: 6, toRun: 6, concurrency: 2 });

    // FLOPs: the grown run counts the double's seed from its graft step (5) to the end (12).
    const small = result.runs.find((r) => r.arm === 'small')!;
    const grown = result.runs.find((r) => r.arm === 'grown')!;
    expect(small.trainingFlops).toBe(trainingFlops(small.result.hostBlocks, 12, 16));
    const seed = grown.result.seeds[0]!;
    expect(seed).toMatchObject({ germinatedStep: 5, fate: 'FOSSILIZED' });
    expect(grown.trainingFlops).toBe(small.trainingFlops + 3 * forwardFlops(seed.blocks) * 16 * 7);
    expect(grown.result.parameters).toBe(result.runs.find((r) => r.arm === 'large')!.result.parameters);

    const json = JSON.parse(await readFile(result.reportFiles.json, 'utf8')) as Record<string, unknown>;
    expect(json.schemaVersion).toBe(STUDY_REPORT_SCHEMA_VERSION);
    expect(json.complete).toBe(true);
    expect(result.report.comparisons.map((c) => c.label)).toEqual(['grown − small', 'grown − large']);
    // The double trains the small host with the same seeds: grown − small is exactly 0.
    expect(result.report.comparisons[0]?.welch?.difference).toBe(0);
    const markdown = await readFile(result.reportFiles.markdown, 'utf8');
    expect(markdown).toContain('# Study spirals-tiny@1');
    expect(markdown).toMatch(/\| grown − small \| 0\.00 \|/);
    expect(markdown).toContain('grown: 2 FOSSILIZED');
    expect(markdown).toContain('test-double-widen');
  }, 90_000);

  it('resumes a stopped study: finished runs are skipped, the rest run', async () => {
    const directory = freshDir();
    const stop = new AbortController();
    let finished = 0;
    const first = await runStudy({
      ...base(directory),
      concurrency: 1,
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type === 'run_finished' && (finished += 1) === 2) stop.abort();
      },
    });
    expect(first.aborted).toBe(true);
    expect(first.runs).toHaveLength(2);
    expect(first.report.complete).toBe(false);
    expect((await readdir(path.join(directory, 'runs'))).filter((f) => f.endsWith('.json')).sort()).toEqual([
      'small-seed0.json',
      'small-seed1.json',
    ]);
    expect(await readFile(path.join(directory, 'report.md'), 'utf8')).toContain('**Incomplete**: 2 of 6 runs');

    const events: StudyEvent[] = [];
    const second = await runStudy({ ...base(directory), concurrency: 1, onEvent: (e) => events.push(e) });
    expect(events.filter((e) => e.type === 'run_skipped').map((e) => (e.type === 'run_skipped' ? `${e.arm}-${e.seed}` : ''))).toEqual([
      'small-0',
      'small-1',
    ]);
    expect(events.filter((e) => e.type === 'run_started')).toHaveLength(4);
    expect(second.runs).toHaveLength(6);
    expect(second.report.complete).toBe(true);
    // The skipped runs are the first invocation's, read back from their files.
    expect(second.runs[0]).toEqual(first.runs[0]);
    // Eight child processes one after another (each starts tsx and TF.js): slow on a loaded machine.
  }, 90_000);

  it('refuses a directory that holds another task or other arms, naming study.json', async () => {
    const directory = freshDir();
    await runStudy({ ...base(directory), arms: ['small'], seeds: [0] });
    const otherArms = await runStudy({ ...base(directory), arms: ['small', 'large'], seeds: [0] }).catch((e: unknown) => e);
    expect(isEsperError(otherArms, ErrorCode.STUDY_DIRECTORY_MISMATCH)).toBe(true);
    expect((otherArms as Error).message).toContain(path.join(directory, 'study.json'));
    const otherVersion = await runStudy({ ...base(directory), task: { ...TINY_TASK, version: 2 }, arms: ['small'] }).catch(
      (e: unknown) => e,
    );
    expect(isEsperError(otherVersion, ErrorCode.STUDY_DIRECTORY_MISMATCH)).toBe(true);
  });

  it('names a truncated run file with a typed error instead of skipping or re-running it', async () => {
    const directory = freshDir();
    await runStudy({ ...base(directory), arms: ['small'], seeds: [0] });
    const file = path.join(directory, 'runs', 'small-seed0.json');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.slice(0, text.length / 2));
    const error = await runStudy({ ...base(directory), arms: ['small'], seeds: [0] }).catch((e: unknown) => e);
    expect(isEsperError(error, ErrorCode.STUDY_FILE_CORRUPT)).toBe(true);
    expect((error as Error).message).toContain(file);
  });

  it('retries a run whose process crashed, once', async () => {
    const events: StudyEvent[] = [];
    const result = await runStudy({
      ...base(freshDir()),
      arms: ['small'],
      seeds: [0],
      staticRunner: { module: path.join(fixtures, 'crash-once-runner.ts') },
      onEvent: (e) => events.push(e),
    });
    const retried = events.find((e) => e.type === 'run_retried');
    expect(retried?.type === 'run_retried' && retried.reason).toMatch(/crashed: .*exit code 7.*exiting on purpose/);
    expect(result.runs[0]?.attempts).toBe(2);
    expect(result.failures).toEqual([]);
  });

  it('reports a run that fails twice as failed, and the study goes on', async () => {
    const events: StudyEvent[] = [];
    const result = await runStudy({
      ...base(freshDir()),
      arms: ['small', 'grown'],
      seeds: [0],
      grownRunner: { module: path.join(fixtures, 'crash-once-runner.ts'), exportName: 'createFailingRunner' },
      onEvent: (e) => events.push(e),
    });
    expect(result.runs.map((r) => r.arm)).toEqual(['small']);
    expect(result.failures).toEqual([{ arm: 'grown', seed: 0, reason: expect.stringMatching(/refused on purpose/) as string }]);
    expect(events.filter((e) => e.type === 'run_started' && e.arm === 'grown')).toHaveLength(2);
    expect(await readFile(result.reportFiles.markdown, 'utf8')).toMatch(/## Failed runs\n\n- grown seed 0: .*refused on purpose/);
  });

  it('validates its options with typed errors before running anything', async () => {
    const missingRunner = await runStudy({ ...base(freshDir()), grownRunner: undefined }).catch((e: unknown) => e);
    expect(isEsperError(missingRunner, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((missingRunner as Error).message).toMatch(/grownRunner/);
    const badSeeds = await runStudy({ ...base(freshDir()), seeds: [1, 1] }).catch((e: unknown) => e);
    expect(isEsperError(badSeeds, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    const unsupported = await runStudy({ ...base(freshDir()), task: { ...TINY_TASK, unsupported: 'a loader' } }).catch((e: unknown) => e);
    expect(isEsperError(unsupported, ErrorCode.STUDY_TASK_UNSUPPORTED)).toBe(true);
    // An arm the task does not have: grown-random is a variant of scheduled tasks only.
    const noSuchArm = await runStudy({ ...base(freshDir()), arms: ['small', 'grown-random'] }).catch((e: unknown) => e);
    expect(isEsperError(noSuchArm, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((noSuchArm as EsperError).details['field']).toBe('arms[1]');
  });
});
