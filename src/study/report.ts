/**
 * The study report: per arm the metric's mean ± sample std and 95 % CI, parameters,
 * training wall time and FLOPs, seeds grown and their fates; the differences of each grown
 * arm to small and to large, and between the grown arms of a task with growth variants
 * (Welch's t-test, CI of the difference, p). `report.json` carries a schema version;
 * `report.md` is the same for people.
 */
import type { GrownSeed } from './arm-runner.js';
import { summarize, welchTest, type Summary, type WelchTest } from './stats.js';
import type { RunRecord } from './study-dir.js';
import {
  describeHost,
  grownHost,
  growthVariant,
  hostOfArm,
  isGrownArm,
  taskKey,
  type GrownArm,
  type StudyArm,
  type TaskDefinition,
} from './tasks.js';

/** Version of `report.json` (2: grown variant arms, `growth` per arm, differences between grown arms). */
export const STUDY_REPORT_SCHEMA_VERSION = 2;

/** One run in the report. */
export interface ReportRun {
  readonly seed: number;
  /** The metric in report units (accuracy in %, loss as is). */
  readonly metric: number;
  readonly parameters: number;
  readonly trainingWallS: number;
  readonly trainingFlops: number;
  readonly attempts: number;
  /** Batches skipped after failed steps (`ArmResult.skippedSteps`); absent when none. */
  readonly skippedSteps?: number;
  readonly seeds: readonly GrownSeed[];
}

/** One arm in the report. */
export interface ReportArm {
  readonly arm: StudyArm;
  readonly host: string;
  /** How a grown arm grows (`GradMax: BP053 per growth, scheduled`, `Tamiyo's heuristic`); absent for static arms. */
  readonly growth?: string;
  readonly runs: readonly ReportRun[];
  /** Undefined when no run of the arm finished. */
  readonly metric: Summary | undefined;
  readonly parameters: { readonly mean: number; readonly min: number; readonly max: number } | undefined;
  readonly trainingWallS: Summary | undefined;
  readonly trainingFlops: Summary | undefined;
  /** Seeds germinated over all runs of the arm, by fate (`FOSSILIZED`, `CULLED`, …). */
  readonly seedFates: Readonly<Record<string, number>>;
}

/** A difference of two arms' metric. */
export interface ReportComparison {
  /** `grown − small`. */
  readonly label: string;
  readonly a: StudyArm;
  readonly b: StudyArm;
  /** Undefined when an arm has fewer than two finished runs. */
  readonly welch: WelchTest | undefined;
}

/** `report.json`. */
export interface StudyReport {
  readonly schemaVersion: typeof STUDY_REPORT_SCHEMA_VERSION;
  readonly task: {
    readonly key: string;
    readonly description: string;
    readonly metric: TaskDefinition['metric'];
    /** `%` (accuracy × 100, differences in points) or `loss`. */
    readonly metricUnit: '%' | 'loss';
    readonly steps: number;
    readonly batchSize: number;
    readonly growthPlan: TaskDefinition['growthPlan'];
    readonly grownTarget: string;
  };
  readonly seeds: readonly number[];
  readonly arms: readonly ReportArm[];
  readonly comparisons: readonly ReportComparison[];
  /** Every planned run finished. */
  readonly complete: boolean;
  readonly aborted: boolean;
  readonly failures: readonly { readonly arm: StudyArm; readonly seed: number; readonly reason: string }[];
}

/** What {@link buildStudyReport} summarises. */
export interface StudyReportInput {
  readonly task: TaskDefinition;
  readonly arms: readonly StudyArm[];
  readonly seeds: readonly number[];
  readonly runs: readonly RunRecord[];
  readonly failures: readonly { readonly arm: StudyArm; readonly seed: number; readonly reason: string }[];
  readonly aborted: boolean;
}

function metricOf(task: TaskDefinition, record: RunRecord): number {
  if (task.metric === 'training_loss') return record.result.trainingLoss;
  return (record.result.validationAccuracy ?? Number.NaN) * 100;
}

function summaryOf(values: readonly number[]): Summary | undefined {
  return values.length === 0 ? undefined : summarize(values);
}

/** Builds the report of a study's finished runs. */
export function buildStudyReport(input: StudyReportInput): StudyReport {
  const { task } = input;
  const arms = input.arms.map((arm): ReportArm => {
    const runs = input.runs
      .filter((r) => r.arm === arm)
      .sort((x, y) => x.seed - y.seed)
      .map((r): ReportRun => ({
        seed: r.seed,
        metric: metricOf(task, r),
        parameters: r.result.parameters,
        trainingWallS: r.result.trainingWallMs / 1000,
        trainingFlops: r.trainingFlops,
        attempts: r.attempts,
        ...(r.result.skippedSteps === undefined ? {} : { skippedSteps: r.result.skippedSteps }),
        seeds: r.result.seeds,
      }));
    const parameters = runs.map((r) => r.parameters);
    const seedFates: Record<string, number> = {};
    for (const seed of runs.flatMap((r) => r.seeds)) seedFates[seed.fate] = (seedFates[seed.fate] ?? 0) + 1;
    const growth = isGrownArm(arm) ? growthOf(task, arm) : undefined;
    return {
      arm,
      host: describeHost(hostOfArm(task, arm)) + (isGrownArm(arm) ? ` → ${describeHost(grownHost(task))}` : ''),
      ...(growth === undefined ? {} : { growth }),
      runs,
      metric: summaryOf(runs.map((r) => r.metric)),
      parameters:
        parameters.length === 0
          ? undefined
          : { mean: parameters.reduce((s, p) => s + p, 0) / parameters.length, min: Math.min(...parameters), max: Math.max(...parameters) },
      trainingWallS: summaryOf(runs.map((r) => r.trainingWallS)),
      trainingFlops: summaryOf(runs.map((r) => r.trainingFlops)),
      seedFates,
    };
  });
  const comparisons = comparedPairs(input.arms).map(([a, b]): ReportComparison => {
    const va = arms.find((x) => x.arm === a)?.runs.map((r) => r.metric) ?? [];
    const vb = arms.find((x) => x.arm === b)?.runs.map((r) => r.metric) ?? [];
    return { label: `${a} − ${b}`, a, b, welch: va.length >= 2 && vb.length >= 2 ? welchTest(va, vb) : undefined };
  });
  return {
    schemaVersion: STUDY_REPORT_SCHEMA_VERSION,
    task: {
      key: taskKey(task),
      description: task.description,
      metric: task.metric,
      metricUnit: task.metric === 'training_loss' ? 'loss' : '%',
      steps: task.steps,
      batchSize: task.batchSize,
      growthPlan: task.growthPlan,
      grownTarget: describeHost(grownHost(task)),
    },
    seeds: [...input.seeds],
    arms,
    comparisons,
    complete: input.runs.length === input.arms.length * input.seeds.length,
    aborted: input.aborted,
    failures: [...input.failures],
  };
}

/** How grown arm `arm` grows, for the report. */
function growthOf(task: TaskDefinition, arm: GrownArm): string {
  const variant = growthVariant(task, arm);
  return variant === undefined ? "Tamiyo's heuristic" : `${variant.label}: ${variant.blueprintId} per growth, scheduled`;
}

/**
 * The differences reported, among the arms run: each grown arm − small and − large, then
 * each grown arm − every later grown arm (`grown − grown-random`); large − small when no
 * grown arm ran.
 */
function comparedPairs(arms: readonly StudyArm[]): [StudyArm, StudyArm][] {
  const grown = arms.filter(isGrownArm);
  if (grown.length === 0) return arms.includes('large') && arms.includes('small') ? [['large', 'small']] : [];
  const statics = (['small', 'large'] as const).filter((a) => arms.includes(a));
  return [
    ...grown.flatMap((g) => statics.map((b): [StudyArm, StudyArm] => [g, b])),
    ...grown.flatMap((a, i) => grown.slice(i + 1).map((b): [StudyArm, StudyArm] => [a, b])),
  ];
}

function num(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
}

function flops(value: number | undefined): string {
  return value === undefined ? '–' : value.toExponential(2).replace('e+', 'e');
}

/** The runs that skipped batches after failed steps, when any. */
function skippedLines(report: StudyReport): string[] {
  const runs = report.arms.flatMap((a) =>
    a.runs.flatMap((r) => (r.skippedSteps === undefined ? [] : [`${a.arm} seed ${r.seed} (${r.skippedSteps})`])),
  );
  return runs.length === 0
    ? []
    : ['', `Runs that skipped the batches of failed steps (loss spikes; at most 1 % of the budget): ${runs.join(', ')}.`];
}

/** `report.md`: the report for people. */
export function formatStudyMarkdown(report: StudyReport): string {
  const unit = report.task.metricUnit;
  const digits = unit === '%' ? 2 : 4;
  const lines = [
    `# Study ${report.task.key}`,
    '',
    report.task.description,
    '',
    `Seeds ${report.seeds.join(', ')}; ${report.task.steps} steps of batch ${report.task.batchSize} per run. ` +
      `Growth plan: ${report.task.growthPlan.map((g) => `${g.method} ${g.site} +${g.units} at step ${g.atStep}`).join('; ') || 'none'}.`,
    ...(report.complete
      ? []
      : [
          '',
          `**Incomplete**: ${report.arms.reduce((n, a) => n + a.runs.length, 0)} of ${report.arms.length * report.seeds.length} runs finished${report.aborted ? ' (stopped)' : ''}.`,
        ]),
    ...skippedLines(report),
    '',
    ...summaryLines(report),
    '## Seeds grown',
    '',
    ...seedLines(report),
    '',
    '## Runs',
    '',
    `| arm | seed | ${unit === '%' ? 'accuracy (%)' : 'loss'} | parameters | wall time (s) | training FLOPs | attempts |`,
    '|---|---|---|---|---|---|---|',
    ...report.arms.flatMap((a) =>
      a.runs.map(
        (r) =>
          `| ${a.arm} | ${r.seed} | ${num(r.metric, digits)} | ${r.parameters} | ${num(r.trainingWallS, 1)} | ${flops(r.trainingFlops)} | ${r.attempts} |`,
      ),
    ),
    ...(report.failures.length === 0
      ? []
      : ['', '## Failed runs', '', ...report.failures.map((f) => `- ${f.arm} seed ${f.seed}: ${f.reason}`)]),
    '',
    "Statistics: mean ± sample std (n − 1); 95 % Student-t interval of the mean; differences by Welch's t-test " +
      '(Welch–Satterthwaite df). FLOPs: 2 per multiply–accumulate of dense and conv blocks, a training step = 3 × forward, ' +
      'grown units counted from the step they were added.',
  ];
  return `${lines.join('\n')}\n`;
}

/** The arms table and the differences table of a report (what `esper study` prints). */
export function formatStudySummary(report: StudyReport): string {
  return summaryLines(report).join('\n');
}

function summaryLines(report: StudyReport): string[] {
  const unit = report.task.metricUnit;
  const digits = unit === '%' ? 2 : 4;
  const metricName = report.task.metric === 'training_loss' ? 'final training loss' : 'final validation accuracy (%)';
  return [
    `## Arms (${metricName})`,
    '',
    '| arm | host | n | mean ± std | 95 % CI | parameters | wall time (s) | training FLOPs |',
    '|---|---|---|---|---|---|---|---|',
    ...report.arms.map((a) => {
      const m = a.metric;
      const ci = m?.ci95 === undefined ? '–' : `[${num(m.ci95[0], digits)}, ${num(m.ci95[1], digits)}]`;
      const params =
        a.parameters === undefined
          ? '–'
          : a.parameters.min === a.parameters.max
            ? String(a.parameters.min)
            : `${a.parameters.min}–${a.parameters.max}`;
      const wall = a.trainingWallS === undefined ? '–' : `${num(a.trainingWallS.mean, 1)} ± ${num(a.trainingWallS.std, 1)}`;
      return `| ${a.arm} | ${a.host} | ${a.runs.length} | ${num(m?.mean, digits)} ± ${num(m?.std, digits)} | ${ci} | ${params} | ${wall} | ${flops(a.trainingFlops?.mean)} |`;
    }),
    ...growthLines(report),
    '',
    '## Differences (Welch t-test, two-sided)',
    '',
    '| difference | mean | 95 % CI | t | df | p |',
    '|---|---|---|---|---|---|',
    ...report.comparisons.map((c) => {
      const w = c.welch;
      if (w === undefined) return `| ${c.label} | – | – | – | – | – (fewer than two runs per arm) |`;
      return `| ${c.label} | ${num(w.difference, digits)} | [${num(w.ci95[0], digits)}, ${num(w.ci95[1], digits)}] | ${num(w.t, 2)} | ${num(w.df, 1)} | ${w.p < 1e-4 ? w.p.toExponential(1) : w.p.toFixed(4)} |`;
    }),
    '',
  ];
}

/** How each grown arm grows, under the arms table. */
function growthLines(report: StudyReport): string[] {
  const grown = report.arms.filter((a) => a.growth !== undefined);
  return grown.length === 0 ? [] : ['', ...grown.map((a) => `- ${a.arm}: ${a.growth ?? ''}`)];
}

function seedLines(report: StudyReport): string[] {
  const grown = report.arms.filter((a) => a.runs.some((r) => r.seeds.length > 0));
  if (grown.length === 0) return ['No run grew a seed.'];
  return grown.flatMap((a) => [
    `${a.arm}: ${Object.entries(a.seedFates)
      .map(([fate, n]) => `${n} ${fate}`)
      .join(', ')}`,
    '',
    '| seed (run) | seed id | site | blueprint | germinated | fate | at step | reason | parameters |',
    '|---|---|---|---|---|---|---|---|---|',
    ...a.runs.flatMap((r) =>
      r.seeds.map(
        (s) =>
          `| ${r.seed} | ${s.seedId} | ${s.siteId} | ${s.blueprintId} | ${s.germinatedStep} | ${s.fate} | ${s.fateStep} | ${s.fateReason || '–'} | ${s.parameters} |`,
      ),
    ),
    '',
  ]);
}
