/**
 * `esper study`: arms × seeds of one study task, each run in its own process (the study
 * harness, `src/study`), the grown arm composed by Weatherlight; progress on stderr, the
 * path of report.md and the summary table on stdout. A second invocation on the same
 * directory resumes where the first stopped.
 */
import path from 'node:path';
import { describeError, loadSettings, type EsperSettings } from '../core/index.js';
import {
  armsOfTask,
  findTask,
  isGrownArm,
  formatStudySummary,
  runStudy,
  STUDY_ARMS,
  STUDY_TASKS,
  taskKey,
  type StudyArm,
  type StudyEvent,
  type StudyResult,
  type TaskDefinition,
} from '../study/index.js';
import { grownArmRunnerModule, runKeyRing } from '../weatherlight/index.js';
import { ExitCode, helpText, logSettings, parseCommandLine, reportFailure, UsageError, withInterrupts } from './scaffold.js';
import type { CliIo, CommandSpec, FlagSpec } from './scaffold.js';

/** The flags of `esper study`, declared once. */
export const STUDY_FLAGS = {
  task: {
    kind: 'string',
    value: '<name>',
    help: `study task, name or name@version (required):\n${STUDY_TASKS.filter((t) => t.unsupported === undefined)
      .map((t) => taskKey(t))
      .join(', ')}`,
  },
  seeds: { kind: 'integer', value: '<n>', help: 'seeds 0 … n−1 per arm', min: 1, max: 1000, default: 5 },
  arms: {
    kind: 'string',
    value: '<list>',
    help: `comma-separated arms, in report order, of the task's: ${STUDY_ARMS.join(', ')}, and grown-<variant> for its growth variants`,
    defaultText: "all of the task's arms",
  },
  out: {
    kind: 'string',
    value: '<dir>',
    help: 'study directory (resumed when it holds this study)',
    defaultText: '<storage.varDir>/studies/<task>@<version>',
  },
  concurrency: { kind: 'integer', value: '<n>', help: 'runs at once, one process each', min: 1, max: 64, defaultText: 'cores − 1' },
  json: { kind: 'boolean', help: 'print report.json instead of the summary table' },
} as const satisfies Readonly<Record<string, FlagSpec>>;

/** The declaration of `esper study`. */
export const STUDY_COMMAND: CommandSpec<typeof STUDY_FLAGS> = {
  name: 'esper study',
  summary: 'compare a small host, the same host growing, and a large static host over seeds',
  synopsis: '--task <name> [options]',
  flags: STUDY_FLAGS,
  notes: `Arms: small (the task's host, static), grown (the same host with Tamiyo + Kasmina),
large (static, the size the task's growth plan reaches); all on the same data, step budget
and seeds. A task with scheduled growth variants has one grown arm per variant: Tamiyo
executes the task's growth plan with the variant's blueprint (student-teacher@2: grown =
GradMax units, grown-random = random units). Finished runs are kept in the study directory
(runs/<arm>-seed<n>.json); run the same command again to finish a stopped study. report.md
and report.json hold per arm the final metric (mean ± std, 95 % CI), parameters, wall time
and training FLOPs, the differences of each grown arm to small and to large and between
grown arms (Welch's t-test), and every seed grown.

Exit codes: 0 every run finished; 1 a run failed (the others are kept and reported);
2 bad flags, settings or key ring (nothing started); 130 stopped by SIGINT or SIGTERM
(finished runs are kept; run again to resume).`,
};

/** The `--help` text of `esper study`. */
export const STUDY_HELP = helpText(STUDY_COMMAND);

/** Options of {@link runStudyCommand} beyond the arguments (tests inject these). */
export interface StudyCommandOptions {
  /** Stops the study: running runs are killed, finished ones kept. @default SIGINT/SIGTERM */
  readonly signal?: AbortSignal;
  /** @default loadSettings() */
  readonly settings?: EsperSettings;
  /** The registry `--task` is looked up in. @default the study's registry */
  readonly tasks?: readonly TaskDefinition[];
}

interface PreparedStudy {
  readonly task: TaskDefinition;
  readonly arms: StudyArm[];
  readonly seeds: number;
  readonly directory: string;
  readonly concurrency: number | undefined;
  readonly settings: EsperSettings;
  readonly json: boolean;
}

/** Runs `esper study` with the arguments after `study`; returns the exit code. */
export async function runStudyCommand(argv: readonly string[], io: CliIo, options: StudyCommandOptions = {}): Promise<number> {
  let prepared: PreparedStudy;
  try {
    const { values, help } = parseCommandLine(STUDY_COMMAND, argv);
    if (help) {
      io.stdout.write(STUDY_HELP);
      return ExitCode.OK;
    }
    if (values.task === undefined) throw new UsageError('--task is required');
    const task = taskNamed(values.task, options.tasks);
    const arms = values.arms === undefined ? armsOfTask(task) : parseArms(values.arms, task);
    const settings = options.settings ?? loadSettings();
    logSettings(io, STUDY_COMMAND.name, settings);
    if (arms.some(isGrownArm)) {
      // Checked (and a local key created) here, once, before any run process starts.
      await runKeyRing(settings, (file) =>
        io.stderr.write(`esper study: no signing key configured; created ${file} (mode 0600) for this and later runs\n`),
      );
    }
    const directory = values.out ?? path.join(settings.storage.varDir, 'studies', taskKey(task));
    prepared = { task, arms, seeds: values.seeds, directory, concurrency: values.concurrency, settings, json: values.json };
  } catch (error) {
    return reportFailure(io, STUDY_COMMAND, error);
  }
  try {
    const result = await withInterrupts(io, STUDY_COMMAND.name, options.signal, (signal) =>
      runStudy({
        task: prepared.task,
        seeds: prepared.seeds,
        arms: prepared.arms,
        directory: prepared.directory,
        settings: prepared.settings,
        grownRunner: grownArmRunnerModule(),
        ...(prepared.concurrency === undefined ? {} : { concurrency: prepared.concurrency }),
        signal,
        onEvent: progressPrinter(io, prepared.task),
      }),
    );
    io.stdout.write(prepared.json ? `${JSON.stringify(result.report)}\n` : summaryText(result));
    if (result.aborted) return ExitCode.INTERRUPTED;
    return result.failures.length === 0 ? ExitCode.OK : ExitCode.FAILURE;
  } catch (error) {
    return reportFailure(io, STUDY_COMMAND, error);
  }
}

function taskNamed(name: string, tasks: readonly TaskDefinition[] | undefined): TaskDefinition {
  try {
    return findTask(name, tasks);
  } catch (error) {
    throw new UsageError(`--task: ${describeError(error)}`, { cause: error });
  }
}

function parseArms(text: string, task: TaskDefinition): StudyArm[] {
  const known: readonly string[] = armsOfTask(task);
  const arms = text.split(',').map((a) => a.trim());
  for (const arm of arms) {
    if (!known.includes(arm)) {
      throw new UsageError(`--arms must list arms of ${taskKey(task)} out of ${known.join(', ')}, got '${arm}'`);
    }
  }
  if (new Set(arms).size !== arms.length) throw new UsageError(`--arms lists an arm twice: '${text}'`);
  return arms as StudyArm[];
}

function summaryText(result: StudyResult): string {
  const failed = result.failures.map((f) => `failed: ${f.arm} seed ${f.seed}: ${f.reason}\n`).join('');
  return `report: ${result.reportFiles.markdown}\n\n${formatStudySummary(result.report)}\n${failed}`;
}

/** Quarters of a run at which a progress line is printed. */
const PROGRESS_QUARTERS = 4;

/** Progress lines on stderr: one per run start and end, and a few per run in between. */
function progressPrinter(io: CliIo, task: TaskDefinition): (event: StudyEvent) => void {
  const printedQuarter = new Map<string, number>();
  const say = (line: string): void => {
    io.stderr.write(`esper study: ${line}\n`);
  };
  return (event) => {
    switch (event.type) {
      case 'study_started':
        say(`${event.task}: ${event.runs} runs (${event.toRun} to run, ${event.concurrency} at a time) in ${event.directory}`);
        return;
      case 'settings_changed':
        say(`the settings differ from those of the runs already in ${event.directory}`);
        return;
      case 'run_skipped':
        say(`${event.arm} seed ${event.seed}: already finished (${event.file})`);
        return;
      case 'run_started':
        printedQuarter.set(`${event.arm}-${event.seed}`, 0);
        say(`${event.arm} seed ${event.seed}: started${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}`);
        return;
      case 'run_progress': {
        const key = `${event.arm}-${event.seed}`;
        const quarter = Math.floor((event.step / event.totalSteps) * PROGRESS_QUARTERS);
        if (quarter <= (printedQuarter.get(key) ?? 0) || quarter >= PROGRESS_QUARTERS) return;
        printedQuarter.set(key, quarter);
        say(`${event.arm} seed ${event.seed}: step ${event.step}/${event.totalSteps}, loss ${event.loss.toFixed(4)}`);
        return;
      }
      case 'run_retried':
        say(`${event.arm} seed ${event.seed}: failed, trying again: ${event.reason}`);
        return;
      case 'run_finished': {
        const r = event.record.result;
        const metric =
          task.metric === 'training_loss' || r.validationAccuracy === undefined
            ? `loss ${r.trainingLoss.toFixed(4)}`
            : `${(r.validationAccuracy * 100).toFixed(2)} %`;
        const seeds = r.seeds.length === 0 ? '' : `, seeds ${r.seeds.map((s) => `${s.blueprintId}@${s.siteId} ${s.fate}`).join(', ')}`;
        say(`${event.arm} seed ${event.seed}: ${metric}, ${r.parameters} parameters, ${(r.trainingWallMs / 1000).toFixed(1)} s${seeds}`);
        return;
      }
      case 'run_failed':
        say(`${event.arm} seed ${event.seed}: failed: ${event.reason}`);
        return;
      case 'study_finished':
        say(event.aborted ? 'stopped; run the same command again to resume' : 'done');
        return;
    }
  };
}
