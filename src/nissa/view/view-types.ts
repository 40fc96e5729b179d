/**
 * The JSON shapes the live view serves (`/api/runs`, `/api/runs/:id`, `/api/stream`). Every
 * number is a plain JSON number (steps are safe integers; a uint64 run seed is a decimal
 * string), every enum a name without its prefix (`TRAINING`, `GERMINATE`, `APPLIED`).
 */

/** One curve point: `[global step, value]`. */
export type CurvePoint = readonly [step: number, value: number];

/** Names of the per-run curves. */
export const CurveName = {
  /** Training loss of step packets, sampled by the curve's bound. */
  STEP_LOSS: 'stepLoss',
  /** Training loss of epoch-end packets. */
  TRAINING_LOSS: 'trainingLoss',
  VALIDATION_LOSS: 'validationLoss',
  VALIDATION_ACCURACY: 'validationAccuracy',
} as const;

/** One of {@link CurveName}. */
export type CurveName = (typeof CurveName)[keyof typeof CurveName];

/** A curve's points sent since a cursor: `reset` replaces the client's copy, else appends. */
export interface CurveDelta {
  readonly reset: boolean;
  readonly points: readonly CurvePoint[];
}

/** A seed's lifecycle stage over a span of global steps (both ends inclusive). */
export interface StageInterval {
  /** Stage name without its prefix, e.g. `BLENDING`. */
  readonly stage: string;
  readonly fromStep: number;
  readonly toStep: number;
}

/** What finally became of a seed. */
export interface SeedFate {
  /** `FOSSILIZED`, `CULLED` or `TERMINATED`. */
  readonly fate: string;
  readonly atStep: number;
  /** Why (cull and termination reasons), empty when not given. */
  readonly reason: string;
}

/** One row of the seed swimlane. */
export interface SeedLaneView {
  readonly seedId: string;
  readonly siteId: string;
  readonly blueprintId: string;
  /** Current stage name. */
  readonly stage: string;
  readonly intervals: readonly StageInterval[];
  /** Latest blend weight in [0, 1]. */
  readonly alpha: number;
  /** Blend weight over steps, bounded like a curve. */
  readonly alphaPoints: readonly CurvePoint[];
  /** Latest counterfactual contribution (accuracy with the seed minus without); absent until measured. */
  readonly contribution?: number;
  readonly fate?: SeedFate;
  readonly firstStep: number;
  readonly lastStep: number;
}

/** An adaptation command and what became of it. */
export interface CommandView {
  readonly commandId: string;
  /** `SEED`, `ROLLBACK`, ... (`UNKNOWN` when only the acknowledgement was seen). */
  readonly commandType: string;
  /** Seed operation (`GERMINATE`, ...), empty for other command types. */
  readonly operation: string;
  readonly seedId: string;
  readonly siteId: string;
  readonly blueprintId: string;
  readonly issuedBy: string;
  readonly issuedAtMs: number;
  /** The run's latest global step when the command was seen. */
  readonly step: number;
  /** Risk engine reason (`POLICY`, `LOSS_SPIKE`, ...), empty when unset. */
  readonly riskReason: string;
  readonly conservativeMode: boolean;
  readonly riskScore?: number;
  readonly valueEstimate?: number;
  /** `ISSUED` until acknowledged, then the ack status (`APPLIED`, `REJECTED`, `NOT_APPLIED`, ...). */
  readonly status: string;
  /** The acknowledgement's reason (empty for APPLIED). */
  readonly reason: string;
  readonly ackStep?: number;
  /** The field report's outcome (`SUCCESS`, `NEUTRAL`, ...), once reported. */
  readonly outcome?: string;
}

/** A telemetry event worth showing on a run's timeline (Tamiyo's risk reasons, Kasmina's gates and fates). */
export interface RunEventView {
  /** Unique within the run, increasing. */
  readonly id: number;
  /** Board sequence of the delivery that carried it. */
  readonly seq: number;
  readonly atMs: number;
  readonly step: number;
  readonly source: string;
  /** `INFO`, `WARNING`, `ERROR`, `CRITICAL`. */
  readonly level: string;
  readonly description: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** A run as the fleet list shows it. */
export interface RunSummary {
  readonly runId: string;
  /** `running` until an ENDED announcement, then `ended`. */
  readonly phase: 'running' | 'ended';
  readonly endReason: string;
  readonly experimentName: string;
  readonly hostId: string;
  readonly hostFamily: string;
  /** The run seed (uint64, decimal). */
  readonly runSeed: string;
  readonly epoch: number;
  /** 0 when not known. */
  readonly epochsPlanned: number;
  readonly globalStep: number;
  readonly validationAccuracy?: number;
  readonly validationLoss?: number;
  readonly trainingLoss?: number;
  readonly seedsTotal: number;
  readonly seedsActive: number;
  readonly seedsFossilized: number;
  readonly seedsCulled: number;
  readonly commandsIssued: number;
  readonly commandsApplied: number;
  /** Commands acknowledged with any status but APPLIED. */
  readonly commandsRefused: number;
  /** 1 while Tamiyo reports conservative mode, 0 otherwise; absent until reported. */
  readonly conservativeMode?: number;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
}

/** A run's state since a cursor (`since` = 0: all of it). */
export interface RunDelta {
  readonly runId: string;
  /** Board sequence the delta is complete up to; pass it as the next `since`. */
  readonly seq: number;
  /** True when it replaces the client's copy entirely. */
  readonly full: boolean;
  readonly summary?: RunSummary;
  readonly curves: Partial<Record<CurveName, CurveDelta>>;
  /** Lanes changed since the cursor; with `seedsReset` the complete set. */
  readonly seeds: readonly SeedLaneView[];
  readonly seedsReset: boolean;
  /** Commands changed since the cursor; with `commandsReset` the complete (bounded) list. */
  readonly commands: readonly CommandView[];
  readonly commandsReset: boolean;
  /** Events newer than the cursor, oldest first. */
  readonly events: readonly RunEventView[];
}

/** Severity of an alert. */
export type AlertSeverity = 'info' | 'warning' | 'critical';

/** An alert firing or resolving, as Nissa's evaluator reports it. */
export interface AlertEvent {
  /** Rule name, e.g. `tamiyo_gnn_coverage_low`. */
  readonly name: string;
  readonly severity: AlertSeverity;
  readonly message: string;
  readonly firedAtMs: number;
  /** Set when the alert resolved. */
  readonly resolvedAtMs?: number;
  /** The run it concerns, if any. */
  readonly trainingRunId?: string;
}

/** The board's fleet-wide state since a cursor. */
export interface FleetDelta {
  readonly seq: number;
  /** True when `runs` is the complete list (no `removed`). */
  readonly full: boolean;
  /** Runs changed since the cursor, most recently seen first. */
  readonly runs: readonly RunSummary[];
  /** Runs evicted since the cursor. */
  readonly removed: readonly string[];
  /** Active alerts then recently resolved ones; present when they changed. */
  readonly alerts?: readonly AlertEvent[];
  /** Weatherlight's mode; present when it changed. */
  readonly mode?: ModeView;
}

/** Weatherlight's mode. */
export interface ModeView {
  /** `operational`, `degraded`, or `unknown` before any report. */
  readonly mode: string;
  readonly sinceMs: number;
}

/** Counters of what the board dropped to stay bounded. */
export interface RunBoardStats {
  readonly runs: number;
  readonly runsEvicted: number;
  readonly pointsDecimated: number;
  readonly seedsEvicted: number;
  readonly intervalsDropped: number;
  readonly commandsDropped: number;
  readonly eventsDropped: number;
  /** Messages for runs evicted earlier, ignored. */
  readonly lateMessagesIgnored: number;
  /** Messages without a training run id that carried nothing fleet-wide. */
  readonly unroutedMessages: number;
}
