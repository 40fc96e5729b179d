/**
 * What `report.html` and a run's TensorBoard files are made of: a plain object, built by
 * the caller (the CLI, from Weatherlight's experiment result), so that Nissa depends on no
 * layer above it.
 */

/** One epoch of one arm, counted from 1. */
export interface ReportEpoch {
  readonly epoch: number;
  /** The optimizer's global step at the epoch's end. */
  readonly globalStep: number;
  readonly trainLoss: number;
  readonly validationLoss: number;
  /** 0–1. */
  readonly validationAccuracy: number;
}

/** One arm of the experiment: `grown`, or `baseline` (the static host). */
export interface ReportArm {
  /** A short name, also the TensorBoard run directory's: `grown`, `baseline`. */
  readonly name: string;
  /** What the charts call it: `grown`, `static baseline`. */
  readonly label: string;
  readonly epochs: readonly ReportEpoch[];
}

/** A seed's entry into a lifecycle stage. */
export interface ReportStage {
  /** The stage's name without prefix: `GERMINATED`, `TRAINING`, …, `FOSSILIZED`, `CULLED`. */
  readonly stage: string;
  readonly step: number;
}

/** One seed's lane in the swimlane. */
export interface ReportSeed {
  readonly seedId: string;
  readonly siteId: string;
  readonly blueprintId: string;
  /** The stages it entered, in order. */
  readonly stages: readonly ReportStage[];
  /** `FOSSILIZED`, `CULLED`, or the stage it was in when the run ended. */
  readonly fate: string;
  readonly fateStep: number;
  /** Why it was culled ('' otherwise). */
  readonly fateReason: string;
  /** Its last measured contribution to validation accuracy (0–1 scale), if any. */
  readonly contribution?: number;
}

/** Everything `report.html` shows. */
export interface RunReportData {
  readonly runId: string;
  /** The page's heading. */
  readonly title: string;
  /** The run's summary, one line each (plain text). */
  readonly summaryLines: readonly string[];
  /** The grown arm first; the baseline when it was trained. */
  readonly arms: readonly ReportArm[];
  readonly seeds: readonly ReportSeed[];
  /** The grown arm's last step: the swimlane's right edge. */
  readonly totalSteps: number;
}
