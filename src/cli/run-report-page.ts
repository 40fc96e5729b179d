/**
 * The data of `report.html` (Nissa's {@link RunReportData}) from what `esper run` reports,
 * with epochs counted from 1 as the progress lines and record.json count them.
 */
import type { ReportEpoch, RunReportData } from '../nissa/index.js';
import type { EpochReport } from '../tolaria/index.js';
import type { RunFigures, RunReport } from './run-report.js';

function epochs(reports: readonly EpochReport[]): ReportEpoch[] {
  return reports.map((r) => ({
    epoch: r.epoch + 1,
    globalStep: r.globalStep,
    trainLoss: r.trainLoss,
    validationLoss: r.validationLoss,
    validationAccuracy: r.validationAccuracy,
  }));
}

function figuresLine(name: string, f: RunFigures): string {
  return `${name}: ${(f.finalAccuracy * 100).toFixed(2)} % final validation accuracy, ${f.parameters} parameters, ${f.steps} steps, ${f.wallS.toFixed(1)} s`;
}

/** What report.html shows of a run. */
export function reportPageData(
  report: RunReport,
  arms: { readonly grownEpochs: readonly EpochReport[]; readonly baselineEpochs: readonly EpochReport[] },
): RunReportData {
  const { config, seeds } = report;
  const count = (fate: string): number => seeds.filter((s) => s.fate === fate).length;
  return {
    runId: report.runId,
    title: `esper run ${report.runId}`,
    summaryLines: [
      `${config.host} ${config.hidden.join('-')} on ${config.dataset}, ${config.epochs} epochs, ${config.policy} policy, seed ${config.seed}`,
      ...(report.interrupted ? [`Interrupted at step ${report.grown.steps}: no static baseline was trained.`] : []),
      figuresLine('grown', report.grown),
      ...(report.baseline === undefined ? [] : [figuresLine('static baseline', report.baseline)]),
      `Seeds: ${seeds.length} germinated, ${count('FOSSILIZED')} fossilized, ${count('CULLED')} culled.`,
      `Commands: ${report.commands.issued} issued by Tamiyo, ${report.commands.accepted} accepted by Kasmina, ${report.commands.rejected} rejected${report.commands.runEnded > 0 ? `, ${report.commands.runEnded} reached the run after its last step` : ''}.`,
      `Control plane: ${(report.controlPlane.shareOfStep * 100).toFixed(1)} % of the grown run's training time.`,
    ],
    arms: [
      { name: 'grown', label: 'grown', epochs: epochs(arms.grownEpochs) },
      ...(arms.baselineEpochs.length === 0 ? [] : [{ name: 'baseline', label: 'static baseline', epochs: epochs(arms.baselineEpochs) }]),
    ],
    seeds: seeds.map((s) => ({
      seedId: s.seedId,
      siteId: s.siteId,
      blueprintId: s.blueprintId,
      stages: s.stages,
      fate: s.fate,
      fateStep: s.fateStep,
      fateReason: s.fateReason,
      ...(s.contribution === undefined ? {} : { contribution: s.contribution }),
    })),
    totalSteps: report.grown.steps,
  };
}
