/**
 * `runStudy`: every arm × seed of one task, each run in its own child process, as many at
 * once as the cores allow, through core's shared `AsyncWorker`; finished runs are kept in
 * the study directory, so a second invocation goes on where the first stopped; then the
 * report (`report.md`, `report.json`).
 */
import os from 'node:os';
import { defaultMaxListeners, setMaxListeners } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AsyncWorker, ErrorCode, EsperError, describeError, isEsperError, optionChecks, type EsperSettings } from '../core/index.js';
import type { ArmProgress, ArmResult, ArmRunnerModule } from './arm-runner.js';
import { runInChild } from './child-run.js';
import { runTrainingFlops } from './flops.js';
import { buildStudyReport, formatStudyMarkdown, type StudyReport } from './report.js';
import {
  openStudyDirectory,
  runFileName,
  STUDY_RUNS_DIR,
  writeFileAtomic,
  writeRunRecord,
  type RunRecord,
  type StudyManifest,
} from './study-dir.js';
import { armsOfTask, assertTaskRunnable, findTask, isGrownArm, taskKey, type StudyArm, type TaskDefinition } from './tasks.js';

/** Options of {@link runStudy}. */
export interface StudyOptions {
  /** The task: a registry name (`fmnist-mlp-narrow`, `fmnist-mlp-narrow@1`) or a definition. */
  readonly task: string | TaskDefinition;
  /** Seeds: a count `n` (seeds 0 … n−1) or the list. */
  readonly seeds: number | readonly number[];
  /**
   * Arms to run, in report order: any of the task's arms (`armsOfTask`).
   * @default the task's arms: ['small', 'grown', 'large'], with a scheduled task's grown variants in place of 'grown'
   */
  readonly arms?: readonly StudyArm[];
  /** The study directory (created if missing; resumed if it holds this study). */
  readonly directory: string;
  /**
   * Settings every run uses (storage.varDir holds the dataset cache). Runs always get
   * `core.latencyBudgets: observe`, so a run's result is a function of its seed and
   * settings, not of how loaded the machine was while the study ran.
   */
  readonly settings: EsperSettings;
  /** Runner of the grown arms (required when the arms include one); it is told which grown arm it runs. */
  readonly grownRunner?: ArmRunnerModule;
  /**
   * Runner of the static arms.
   * @default the study's own (`static-runner`)
   */
  readonly staticRunner?: ArmRunnerModule;
  /**
   * Runs at once, each in its own process.
   * @default max(1, cpus − 1), capped by the runs to do
   */
  readonly concurrency?: number;
  /**
   * Extra attempts of a run that failed or whose process crashed.
   * @default 1
   */
  readonly retries?: number;
  /** Stops the study: queued runs never start, running ones are killed; finished ones stay. */
  readonly signal?: AbortSignal;
  /** Progress of the study (must not throw). */
  readonly onEvent?: (event: StudyEvent) => void;
}

/** What {@link StudyOptions.onEvent} receives. */
export type StudyEvent =
  | {
      readonly type: 'study_started';
      readonly directory: string;
      readonly task: string;
      readonly runs: number;
      readonly toRun: number;
      readonly concurrency: number;
    }
  /** The directory's settings digest differs: earlier runs were made with other settings. */
  | { readonly type: 'settings_changed'; readonly directory: string }
  | { readonly type: 'run_skipped'; readonly arm: StudyArm; readonly seed: number; readonly file: string }
  | { readonly type: 'run_started'; readonly arm: StudyArm; readonly seed: number; readonly attempt: number }
  | ({ readonly type: 'run_progress'; readonly arm: StudyArm; readonly seed: number } & ArmProgress)
  | { readonly type: 'run_retried'; readonly arm: StudyArm; readonly seed: number; readonly reason: string }
  | { readonly type: 'run_finished'; readonly arm: StudyArm; readonly seed: number; readonly file: string; readonly record: RunRecord }
  | { readonly type: 'run_failed'; readonly arm: StudyArm; readonly seed: number; readonly reason: string }
  | { readonly type: 'study_finished'; readonly report: StudyReport; readonly aborted: boolean };

/** A run that did not finish. */
export interface StudyRunFailure {
  readonly arm: StudyArm;
  readonly seed: number;
  readonly reason: string;
}

/** What {@link runStudy} returns. */
export interface StudyResult {
  readonly directory: string;
  readonly task: TaskDefinition;
  readonly manifest: StudyManifest;
  /** Finished runs of the requested arms and seeds (earlier invocations' included). */
  readonly runs: readonly RunRecord[];
  readonly failures: readonly StudyRunFailure[];
  /** The signal stopped the study before every run was done. */
  readonly aborted: boolean;
  readonly report: StudyReport;
  /** Paths of `report.md` and `report.json`. */
  readonly reportFiles: { readonly markdown: string; readonly json: string };
}

/** The study's own static-arm runner, beside this module (`.ts` under tsx, `.js` from dist). */
export function defaultStaticRunner(): ArmRunnerModule {
  const here = fileURLToPath(import.meta.url);
  return { module: path.join(path.dirname(here), `static-runner${path.extname(here)}`), exportName: 'createArmRunner' };
}

/** Training FLOPs of a finished run: its host for every step, each seed from its graft until its cull or the end. */
export function runFlops(result: ArmResult, batchSize: number): number {
  return runTrainingFlops(
    result.hostBlocks,
    result.steps,
    batchSize,
    result.seeds.map((s) => ({ blocks: s.blocks, fromStep: s.germinatedStep, toStep: s.fate === 'CULLED' ? s.fateStep : result.steps })),
  );
}

const check = optionChecks('StudyOptions');

function resolveSeeds(seeds: number | readonly number[]): number[] {
  if (typeof seeds === 'number') return Array.from({ length: check.integer('seeds', seeds, { min: 1, max: 1000 }) }, (_, i) => i);
  if (seeds.length === 0) check.fail('seeds', 'one or more seeds', seeds);
  seeds.forEach((s, i) => check.integer(`seeds[${i}]`, s, { min: 0 }));
  if (new Set(seeds).size !== seeds.length) check.fail('seeds', 'distinct seeds', seeds);
  return [...seeds];
}

function resolveArms(task: TaskDefinition, arms: readonly StudyArm[] | undefined): StudyArm[] {
  const known = armsOfTask(task);
  const resolved = [...(arms ?? known)];
  if (resolved.length === 0) check.fail('arms', 'one or more arms', resolved);
  resolved.forEach((a, i) => check.oneOf(`arms[${i}]`, a, known));
  if (new Set(resolved).size !== resolved.length) check.fail('arms', 'distinct arms', resolved);
  return resolved;
}

/**
 * Runs (or resumes) a study and writes its report.
 * @throws EsperError INVALID_ARGUMENT for bad options, STUDY_TASK_UNSUPPORTED for a task that
 *   cannot run, STUDY_DIRECTORY_MISMATCH / STUDY_FILE_CORRUPT for a directory that holds
 *   another study or an unreadable file (each names the file)
 */
export async function runStudy(options: StudyOptions): Promise<StudyResult> {
  const task = typeof options.task === 'string' ? findTask(options.task) : options.task;
  assertTaskRunnable(task);
  const arms = resolveArms(task, options.arms);
  const seeds = resolveSeeds(options.seeds);
  const retries = check.integer('retries', options.retries ?? 1, { min: 0, max: 10 });
  if (arms.some(isGrownArm) && options.grownRunner === undefined) {
    check.fail('grownRunner', 'a runner module for the grown arms (the arms include one)', undefined);
  }
  const emit = (event: StudyEvent): void => {
    try {
      options.onEvent?.(event);
    } catch {
      // A listener's failure must not stop the study; listeners must not throw.
    }
  };
  const settings: EsperSettings = { ...options.settings, core: { ...options.settings.core, latencyBudgets: 'observe' } };
  const opened = await openStudyDirectory(options.directory, { task, arms, seeds, settings });
  if (opened.settingsChanged) emit({ type: 'settings_changed', directory: options.directory });
  const planned = arms.flatMap((arm) => seeds.map((seed) => ({ arm, seed })));
  const finished = new Map<string, RunRecord>();
  for (const run of planned) {
    const record = opened.finished.get(runFileName(run.arm, run.seed));
    if (record === undefined) continue;
    finished.set(runFileName(run.arm, run.seed), record);
    emit({ type: 'run_skipped', ...run, file: path.join(options.directory, STUDY_RUNS_DIR, runFileName(run.arm, run.seed)) });
  }
  const toRun = planned.filter((run) => !finished.has(runFileName(run.arm, run.seed)));
  const cpus = Math.max(1, os.availableParallelism() - 1);
  const concurrency = Math.max(1, Math.min(check.integer('concurrency', options.concurrency ?? cpus, { min: 1, max: 64 }), toRun.length));
  emit({
    type: 'study_started',
    directory: options.directory,
    task: taskKey(task),
    runs: planned.length,
    toRun: toRun.length,
    concurrency,
  });

  const failures: StudyRunFailure[] = [];
  const signal = options.signal ?? new AbortController().signal;
  // Every queued run listens on the study's signal until it starts: that many listeners are expected.
  setMaxListeners(Math.max(defaultMaxListeners, toRun.length + defaultMaxListeners), signal);
  const worker = new AsyncWorker({ name: 'study', maxConcurrency: concurrency, maxQueueDepth: Math.max(1, toRun.length) });
  try {
    const handles = toRun.map((run) => ({
      run,
      handle: worker.submit(
        (taskSignal) =>
          runWithRetry({ ...run, task, options, settings, retries, signal: taskSignal, emit }).then(async ({ result, attempts }) => {
            const record: RunRecord = {
              task: taskKey(task),
              arm: run.arm,
              seed: run.seed,
              attempts,
              finishedAt: new Date().toISOString(),
              trainingFlops: runFlops(result, task.batchSize),
              result,
            };
            const file = await writeRunRecord(options.directory, record);
            finished.set(runFileName(run.arm, run.seed), record);
            emit({ type: 'run_finished', ...run, file, record });
          }),
        { name: `${run.arm}-seed${run.seed}`, signal, deadlineMs: Number.POSITIVE_INFINITY },
      ),
    }));
    for (const { run, handle } of handles) {
      try {
        await handle.result;
      } catch (error) {
        const reason = signal.aborted ? 'the study was stopped' : describeError(error);
        failures.push({ ...run, reason });
        if (!signal.aborted) emit({ type: 'run_failed', ...run, reason });
      }
    }
  } finally {
    await worker.close();
  }
  const runs = planned.flatMap((run) => finished.get(runFileName(run.arm, run.seed)) ?? []);
  const report = buildStudyReport({ task, arms, seeds, runs, failures, aborted: signal.aborted });
  const reportFiles = { markdown: path.join(options.directory, 'report.md'), json: path.join(options.directory, 'report.json') };
  await writeFileAtomic(reportFiles.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(reportFiles.markdown, formatStudyMarkdown(report));
  emit({ type: 'study_finished', report, aborted: signal.aborted });
  return { directory: options.directory, task, manifest: opened.manifest, runs, failures, aborted: signal.aborted, report, reportFiles };
}

interface RetryInput {
  readonly arm: StudyArm;
  readonly seed: number;
  readonly task: TaskDefinition;
  readonly options: StudyOptions;
  /** The runs' settings (latency budgets observed). */
  readonly settings: EsperSettings;
  readonly retries: number;
  readonly signal: AbortSignal;
  readonly emit: (event: StudyEvent) => void;
}

/** One run, in a child, tried again up to `retries` times unless the study was stopped. */
async function runWithRetry(input: RetryInput): Promise<{ result: ArmResult; attempts: number }> {
  const { arm, seed, task, options, settings, signal, emit } = input;
  const runner = isGrownArm(arm) ? options.grownRunner : (options.staticRunner ?? defaultStaticRunner());
  if (runner === undefined) throw new EsperError(ErrorCode.INVALID_ARGUMENT, `no runner for the grown arm '${arm}'`);
  for (let attempt = 1; ; attempt += 1) {
    emit({ type: 'run_started', arm, seed, attempt });
    try {
      const result = await runInChild({
        runner,
        task,
        arm,
        seed,
        settings,
        signal,
        onProgress: (p) => emit({ type: 'run_progress', arm, seed, ...p }),
      });
      return { result, attempts: attempt };
    } catch (error) {
      const aborted = signal.aborted || (isEsperError(error, ErrorCode.STUDY_RUN_FAILED) && error.details.reason === 'aborted');
      if (aborted || attempt > input.retries) throw error;
      emit({ type: 'run_retried', arm, seed, reason: describeError(error) });
    }
  }
}
