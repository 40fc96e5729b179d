/**
 * Nissa's Prometheus metrics (prom-client, one registry per Nissa): the prototype's external
 * names unchanged (RC1; reference prototype-tolaria-oona-nissa-weatherlight §4.2), fed from
 * the telemetry names the system emits, plus what a user of a growing run needs — per-run
 * loss and accuracy, seeds by stage, commands and their fates, bus lag, Weatherlight's mode.
 *
 * Departures from the prototype, on purpose:
 * - `esper_training_runs_total` counts training runs (first packet of a run id), not state
 *   packets; `esper_system_state_packets_total{phase}` says `epoch` or `step` (the prototype
 *   put the source subsystem there, always `tolaria`).
 * - `tamiyo_bsds_quarantine_active` follows Tamiyo's packets only (the prototype reset it on
 *   every packet of any source).
 * - A negative `simic.training.reward` is not added to the reward counter (counters cannot
 *   decrease; the prototype threw): it is counted in `nissa_ingest_rejected_total`.
 *
 * Cardinality is bounded: per-run series are kept for the `maxRuns` most recent runs (older
 * runs' series are removed), feature and reason labels come from fixed sets.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  CommandAckStatus,
  FieldReportOutcome,
  SeedLifecycleStage,
  type AdaptationCommand,
  type CommandAck,
  type FieldReport,
  type SystemStatePacket,
  type TelemetryPacket,
} from '../leyline/index.js';
import { RejectionReason } from '../security/index.js';

/** Options of {@link NissaMetrics}. */
export interface NissaMetricsOptions {
  /** `tamiyo.blueprint.risk` at or above this sets `tamiyo_bsds_elevated_risk`. @default 0.8 */
  readonly bsdsElevatedRiskThreshold?: number;
  /** Runs whose per-run series are kept. @default 20 */
  readonly maxRuns?: number;
}

/** Feature groups exported by `tamiyo_gnn_feature_coverage_by_type` (a fixed set). */
export const COVERAGE_FEATURES: readonly string[] = Object.freeze([
  'global.loss',
  'seed.learning_rate',
  'edges.seed_param_allowed',
  'edges.layer_connects',
]);

/** Command rejection reasons exported as label values (the verifier's); anything else is `other`. */
const KNOWN_REASONS: ReadonlySet<string> = new Set(Object.values(RejectionReason));

/** `stage` label values of `esper_run_seeds`, one per lifecycle stage (computed once). */
const STAGE_LABELS: readonly string[] = Object.values(SeedLifecycleStage)
  .filter((v): v is string => typeof v === 'string' && v !== 'UNSPECIFIED')
  .map((name) => name.toLowerCase().replace(/^seed_stage_/, ''));

const INGEST_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 25, 50, 100];
const LAG_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** Lower-case an enum name without its prefix (`FIELD_REPORT_OUTCOME_SUCCESS` → `success`). */
function enumLabel(names: Record<number, string>, value: number): string {
  return (names[value] ?? 'unknown').toLowerCase();
}

/** The metrics Nissa serves on `/metrics`. */
export class NissaMetrics {
  readonly registry = new Registry();
  readonly #threshold: number;
  readonly #maxRuns: number;
  /** Runs with per-run series, least recently updated first. */
  readonly #runs = new Map<string, true>();

  readonly #trainingRuns = new Counter({ name: 'esper_training_runs_total', help: 'Training runs seen', registers: [this.registry] });
  readonly #telemetryPackets = new Counter({
    name: 'esper_telemetry_packets_total',
    help: 'Telemetry packets ingested, by source subsystem',
    labelNames: ['source'],
    registers: [this.registry],
  });
  readonly #statePackets = new Counter({
    name: 'esper_system_state_packets_total',
    help: 'System state packets ingested, by phase (epoch or step)',
    labelNames: ['phase'],
    registers: [this.registry],
  });
  readonly #fieldReports = new Counter({
    name: 'esper_field_reports_total',
    help: 'Field reports ingested, by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly #simicReward = new Counter({
    name: 'esper_simic_training_reward_total',
    help: 'Sum of Simic training rewards',
    registers: [this.registry],
  });
  readonly #simicIterations = new Counter({
    name: 'esper_simic_training_iterations_total',
    help: 'Simic training iterations',
    registers: [this.registry],
  });
  readonly #hazardHigh = new Counter({
    name: 'esper_tamiyo_bsds_hazard_high_total',
    help: 'BSDS high hazards seen by Tamiyo, by provenance',
    labelNames: ['provenance'],
    registers: [this.registry],
  });
  readonly #hazardCritical = new Counter({
    name: 'esper_tamiyo_bsds_hazard_critical_total',
    help: 'BSDS critical hazards seen by Tamiyo, by provenance',
    labelNames: ['provenance'],
    registers: [this.registry],
  });
  readonly #coverage = new Gauge({
    name: 'tamiyo_gnn_feature_coverage',
    help: "Tamiyo's mean GNN feature coverage",
    registers: [this.registry],
  });
  readonly #coverageByType = new Gauge({
    name: 'tamiyo_gnn_feature_coverage_by_type',
    help: "Tamiyo's GNN feature coverage per feature group",
    labelNames: ['feature'],
    registers: [this.registry],
  });
  readonly #quarantine = new Gauge({
    name: 'tamiyo_bsds_quarantine_active',
    help: "1 while Tamiyo's latest packet reported a blueprint quarantine",
    registers: [this.registry],
  });
  readonly #elevatedRisk = new Gauge({
    name: 'tamiyo_bsds_elevated_risk',
    help: '1 while the latest blueprint risk is at or above the elevated threshold',
    registers: [this.registry],
  });
  readonly #ingestLatency = new Histogram({
    name: 'nissa_ingest_latency_ms',
    help: 'Time to ingest one message, in ms',
    labelNames: ['type'],
    buckets: INGEST_BUCKETS,
    registers: [this.registry],
  });
  readonly #rejected = new Counter({
    name: 'nissa_ingest_rejected_total',
    help: 'Values Nissa could not take, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly #dropped = new Counter({
    name: 'nissa_ingest_dropped_total',
    help: 'Messages sampled out while Nissa lagged, by type (never CRITICAL telemetry or field reports)',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly #busLag = new Histogram({
    name: 'esper_bus_lag_ms',
    help: 'Time from publish to Nissa reading a message, in ms',
    labelNames: ['type'],
    buckets: LAG_BUCKETS,
    registers: [this.registry],
  });
  readonly #deadLetters = new Counter({
    name: 'esper_bus_dead_letters_total',
    help: 'Messages dead-lettered by any consumer (from Oona telemetry), by event',
    labelNames: ['event'],
    registers: [this.registry],
  });
  readonly #trainingLoss = new Gauge({
    name: 'esper_run_training_loss',
    help: 'Latest training loss per run',
    labelNames: ['run'],
    registers: [this.registry],
  });
  readonly #validationLoss = new Gauge({
    name: 'esper_run_validation_loss',
    help: 'Latest validation loss per run (epoch ends)',
    labelNames: ['run'],
    registers: [this.registry],
  });
  readonly #validationAccuracy = new Gauge({
    name: 'esper_run_validation_accuracy',
    help: 'Latest validation accuracy per run (epoch ends)',
    labelNames: ['run'],
    registers: [this.registry],
  });
  readonly #globalStep = new Gauge({
    name: 'esper_run_global_step',
    help: 'Latest optimizer step per run',
    labelNames: ['run'],
    registers: [this.registry],
  });
  readonly #seeds = new Gauge({
    name: 'esper_run_seeds',
    help: 'Live seeds per run and lifecycle stage',
    labelNames: ['run', 'stage'],
    registers: [this.registry],
  });
  readonly #commandsIssued = new Counter({
    name: 'esper_commands_issued_total',
    help: 'Commands published, by issuer',
    labelNames: ['issued_by'],
    registers: [this.registry],
  });
  readonly #commandFates = new Counter({
    name: 'esper_command_acks_total',
    help: 'Command acknowledgements, by status and reason',
    labelNames: ['status', 'reason'],
    registers: [this.registry],
  });
  readonly #mode = new Gauge({
    name: 'esper_weatherlight_mode',
    help: "1 for Weatherlight's current mode (operational or degraded)",
    labelNames: ['mode'],
    registers: [this.registry],
  });
  readonly #restarts = new Gauge({
    name: 'esper_weatherlight_restarts',
    help: "Restarts of supervised services (Weatherlight's weatherlight.restarts_total)",
    registers: [this.registry],
  });

  constructor(options: NissaMetricsOptions = {}) {
    this.#threshold = options.bsdsElevatedRiskThreshold ?? 0.8;
    this.#maxRuns = options.maxRuns ?? 20;
  }

  /** Ingests a telemetry packet (the prototype's `ingest_telemetry`, metrics part). */
  telemetry(packet: TelemetryPacket): void {
    const source = packet.sourceSubsystem || 'unknown';
    this.#telemetryPackets.inc({ source });
    const metrics = new Map(packet.metrics.map((m) => [m.name, m.value]));
    for (const event of packet.events) {
      const provenance = (event.attributes['provenance'] ?? 'unknown').toLowerCase();
      if (event.description === 'bsds_hazard_critical') this.#hazardCritical.inc({ provenance });
      else if (event.description === 'bsds_hazard_high') this.#hazardHigh.inc({ provenance });
      else if (
        source === 'oona' &&
        ['dead_letter', 'signature_invalid', 'message_malformed', 'kernel_message_rejected'].includes(event.description)
      ) {
        this.#deadLetters.inc({ event: event.description });
      }
    }
    const coverage = metrics.get('tamiyo.gnn.feature_coverage');
    if (coverage !== undefined) this.#coverage.set(coverage);
    for (const feature of COVERAGE_FEATURES) {
      const value = metrics.get(`tamiyo.gnn.feature_coverage.${feature}`) ?? metrics.get(`tamiyo.gnn.coverage.${feature}`);
      if (value !== undefined) this.#coverageByType.set({ feature }, value);
    }
    const risk = metrics.get('tamiyo.blueprint.risk');
    if (risk !== undefined) this.#elevatedRisk.set(risk >= this.#threshold ? 1 : 0);
    if (source === 'tamiyo') this.#quarantine.set(packet.events.some((e) => e.description === 'bp_quarantine') ? 1 : 0);
    if (source === 'simic') {
      const reward = metrics.get('simic.training.reward');
      if (reward !== undefined) {
        if (reward >= 0) this.#simicReward.inc(reward);
        else this.#rejected.inc({ reason: 'negative_simic_reward' });
      }
      const iterations = metrics.get('simic.training.iterations');
      this.#simicIterations.inc(iterations === undefined || iterations <= 0 ? 1 : iterations);
    }
    if (source === 'weatherlight') {
      const mode = packet.systemHealth?.indicators['system_mode'];
      if (mode !== undefined) {
        this.#mode.reset();
        this.#mode.set({ mode }, 1);
      }
      const restarts = metrics.get('weatherlight.restarts_total');
      if (restarts !== undefined) this.#restarts.set(restarts);
    }
  }

  /** Ingests a state packet: per-run loss, accuracy, step and seeds by stage. */
  state(packet: SystemStatePacket): void {
    this.#statePackets.inc({ phase: packet.epochEnd ? 'epoch' : 'step' });
    const run = packet.trainingRunId;
    if (run === '') return;
    this.#touch(run);
    this.#trainingLoss.set({ run }, packet.trainingLoss);
    this.#globalStep.set({ run }, Number(packet.globalStep));
    if (packet.epochEnd) {
      this.#validationLoss.set({ run }, packet.validationLoss);
      this.#validationAccuracy.set({ run }, packet.validationAccuracy);
    }
    const byStage = new Map<string, number>();
    for (const seed of packet.seedStates) {
      const stage = enumLabel(SeedLifecycleStage, seed.stage).replace(/^seed_stage_/, '');
      byStage.set(stage, (byStage.get(stage) ?? 0) + 1);
    }
    for (const stage of STAGE_LABELS) this.#seeds.set({ run, stage }, byStage.get(stage) ?? 0);
  }

  /** Ingests a field report. */
  fieldReport(report: FieldReport): void {
    this.#fieldReports.inc({ outcome: enumLabel(FieldReportOutcome, report.outcome) });
  }

  /** Ingests a published command. */
  command(command: AdaptationCommand): void {
    this.#commandsIssued.inc({ issued_by: command.issuedBy === 'tamiyo' || command.issuedBy === 'operator' ? command.issuedBy : 'other' });
  }

  /** Ingests a command acknowledgement. */
  commandAck(ack: CommandAck): void {
    const status = enumLabel(CommandAckStatus, ack.status);
    const reason = ack.reason === '' ? '' : KNOWN_REASONS.has(ack.reason) ? ack.reason : 'other';
    this.#commandFates.inc({ status, reason });
  }

  /** A run was announced (counts it). */
  runSeen(run: string): void {
    this.#touch(run);
  }

  /** Records one ingest's latency and the message's time on the bus. */
  observe(type: string, ingestMs: number, lagMs: number): void {
    this.#ingestLatency.observe({ type }, ingestMs);
    if (Number.isFinite(lagMs) && lagMs >= 0) this.#busLag.observe({ type }, lagMs);
  }

  /** A message sampled out while Nissa lagged. */
  dropped(type: string): void {
    this.#dropped.inc({ type });
  }

  /** The Prometheus text exposition. */
  expose(): Promise<string> {
    return this.registry.metrics();
  }

  /** Content type of {@link expose}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  #touch(run: string): void {
    if (this.#runs.has(run)) {
      this.#runs.delete(run);
      this.#runs.set(run, true);
      return;
    }
    this.#trainingRuns.inc();
    this.#runs.set(run, true);
    while (this.#runs.size > this.#maxRuns) {
      const oldest = this.#runs.keys().next().value as string;
      this.#runs.delete(oldest);
      for (const gauge of [this.#trainingLoss, this.#validationLoss, this.#validationAccuracy, this.#globalStep])
        gauge.remove({ run: oldest });
      // prom-client removes a series by its full label set only.
      for (const stage of STAGE_LABELS) this.#seeds.remove({ run: oldest, stage });
    }
  }
}
