/**
 * What `esper run` writes: the report (stdout and report.md) and record.json. Enums are
 * written by name (`FOSSILIZED`, `SUCCESS`, `POLICY`), never as bare numbers, and epochs are
 * counted from 1, as the progress lines count them.
 */
import { FieldReportOutcome, RiskReason } from '../leyline/index.js';
import type { FieldReport } from '../leyline/index.js';
import type { TamiyoDecisionRecord, TamiyoStats } from '../tamiyo/index.js';
import type { EpochReport, TrainingSummary } from '../tolaria/index.js';
import type { ArmFigures, SeedStory } from '../weatherlight/index.js';
import { datasetNote } from './datasets-help.js';
import type { RunConfig } from './run-config.js';

export type { SeedStory };

/** One arm's final accuracy, parameters, steps and wall time. */
export type RunFigures = ArmFigures;

/** What `esper run` reports (also the `report` section of record.json). */
export interface RunReport {
  readonly runId: string;
  readonly config: RunConfig;
  /** Stopped by SIGINT/SIGTERM: the grown run ended early and the baseline was not trained. */
  readonly interrupted: boolean;
  readonly grown: RunFigures;
  readonly baseline?: RunFigures;
  readonly seeds: readonly SeedStory[];
  readonly commands: {
    readonly issued: number;
    readonly accepted: number;
    readonly rejected: number;
    /** Reached the run after its last step (or never got an outcome): acknowledged RUN_ENDED. */
    readonly runEnded: number;
    /** What became of Tamiyo's commands as Tamiyo learned it from their acknowledgements (embedded only). */
    readonly outcomes?: string;
  };
  readonly controlPlane: { readonly tamiyoMs: number; readonly kasminaMs: number; readonly shareOfStep: number };
  readonly fieldReports: number;
  readonly runDir: string;
  /** Set when Tamiyo ran elsewhere on the Redis bus (`esper run --distributed`, `esper up`). */
  readonly distributed?: {
    /** The bus, password redacted. */
    readonly busUrl: string;
    /** The grown run was resumed from its checkpoint at this step (its trainer had been restarted). */
    readonly resumedFromStep: number | undefined;
  };
}

function enumName(names: Record<number, string>, value: number): string {
  return names[value] ?? `UNKNOWN_${value}`;
}

/** An epoch report with its epoch counted from 1. */
function epochFromOne(r: EpochReport): EpochReport {
  return { ...r, epoch: r.epoch + 1 };
}

/** Everything record.json holds besides the report. */
export interface RecordInput {
  readonly report: RunReport;
  readonly stepsPerEpoch: number;
  readonly decisions: readonly TamiyoDecisionRecord[];
  readonly policy: { readonly name: string; readonly version: string; readonly state: unknown };
  readonly fieldReports: readonly FieldReport[];
  readonly grownEpochs: readonly EpochReport[];
  /** Tamiyo's counters, when it ran in this process. */
  readonly tamiyo?: TamiyoStats;
  readonly commandVerifier: { readonly accepted: number; readonly rejected: number; readonly rejectionsByReason: unknown };
  readonly summary: TrainingSummary;
}

/** The object written to record.json. */
export function buildRecord(input: RecordInput): Record<string, unknown> {
  const { report, summary } = input;
  return {
    report,
    interrupted: report.interrupted,
    config: report.config,
    seed: report.config.seed,
    trainingRunId: report.runId,
    stepsPerEpoch: input.stepsPerEpoch,
    decisions: input.decisions.map((d) => ({ ...d, epoch: d.epoch + 1, reason: enumName(RiskReason, d.reason) })),
    policy: input.policy,
    fieldReports: input.fieldReports.map((r) => ({
      reportId: r.reportId,
      commandId: r.commandId,
      seedId: r.seedId,
      blueprintId: r.blueprintId,
      outcome: enumName(FieldReportOutcome, r.outcome),
      observationWindowEpochs: r.observationWindowEpochs,
      notes: r.notes,
      delta:
        r.delta === undefined
          ? undefined
          : { lossDelta: r.delta.lossDelta, counterfactualContribution: r.delta.counterfactualContribution },
    })),
    epochs: { grown: input.grownEpochs.map(epochFromOne) },
    tamiyo: input.tamiyo,
    commandVerifier: input.commandVerifier,
    summary: { ...summary, lastEpoch: summary.lastEpoch === undefined ? undefined : epochFromOne(summary.lastEpoch) },
  };
}

/** JSON of record.json: bigints as numbers. */
export function recordJson(record: Record<string, unknown>): string {
  return `${JSON.stringify(record, (_key, value: unknown) => (typeof value === 'bigint' ? Number(value) : value), 2)}\n`;
}

/** The human-readable report. */
export function formatReport(report: RunReport): string {
  const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;
  const row = (name: string, f: RunFigures): string =>
    `| ${name} | ${pct(f.finalAccuracy)} | ${f.parameters} | ${f.steps} | ${f.wallS.toFixed(1)} s |`;
  const { config } = report;
  const lines = [
    `# esper run ${report.runId}`,
    '',
    `${config.host} ${config.hidden.join('-')} on ${config.dataset}, ${config.epochs} epochs, ${config.policy} policy, seed ${config.seed}`,
    `Data: ${datasetNote(config.dataset)}.`,
    ...(report.interrupted
      ? ['', `**Interrupted** (SIGINT/SIGTERM) at step ${report.grown.steps}: the grown run stopped early; no static baseline was trained.`]
      : []),
    '',
    '| | final validation accuracy | parameters | steps | wall |',
    '|---|---|---|---|---|',
    row('grown', report.grown),
    ...(report.baseline === undefined ? [] : [row('static baseline', report.baseline)]),
    '',
    report.seeds.length === 0
      ? 'No seed was germinated.'
      : '| seed | site | blueprint | germinated at step | fate | at step | contribution | parameters |',
    ...(report.seeds.length === 0 ? [] : ['|---|---|---|---|---|---|---|---|']),
    ...report.seeds.map(
      (s) =>
        `| ${s.seedId} | ${s.siteId} | ${s.blueprintId} | ${s.germinatedStep} | ${s.fate}${s.fateReason === '' ? '' : ` (${s.fateReason})`} | ${s.fateStep} | ${s.contribution === undefined ? '—' : `${(s.contribution * 100).toFixed(2)} pts`} | ${s.parameters} |`,
    ),
    '',
    `Commands: ${report.commands.issued} issued by Tamiyo, ${report.commands.accepted} verified and accepted by Kasmina, ${report.commands.rejected} rejected${report.commands.runEnded > 0 ? `, ${report.commands.runEnded} reached the run after its last step` : ''}.`,
    ...(report.commands.outcomes === undefined ? [] : [`Tamiyo's account of its commands: ${report.commands.outcomes}.`]),
    `Control plane: Tamiyo ${report.controlPlane.tamiyoMs.toFixed(0)} ms, Kasmina ${report.controlPlane.kasminaMs.toFixed(0)} ms — ${(report.controlPlane.shareOfStep * 100).toFixed(1)} % of the grown run's training time.`,
    `Field reports: ${report.fieldReports}${report.distributed === undefined ? '' : ' received from Tamiyo over the bus'} (record in ${report.runDir}).`,
    ...(report.distributed === undefined
      ? []
      : [
          `Distributed: Tamiyo ran as its own service on ${report.distributed.busUrl}; the trainer never waited for it (a command applied at the first step after it arrived, if still fresh).${report.distributed.resumedFromStep === undefined ? '' : ` The trainer was restarted and resumed from its checkpoint at step ${report.distributed.resumedFromStep}.`}`,
        ]),
    '',
  ];
  return lines.join('\n');
}
