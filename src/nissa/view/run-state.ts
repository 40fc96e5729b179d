/**
 * Everything the live view keeps about one training run, bounded: its curves, its seeds'
 * swimlane, the commands issued to it and their fates, and the telemetry events worth
 * showing. Every change is stamped with the board sequence of the delivery that caused it,
 * so {@link RunState.delta} can answer "what changed since N".
 */
import {
  CommandAckStatus,
  CommandType,
  FieldReportOutcome,
  RiskReason,
  RunPhase,
  SeedLifecycleStage,
  SeedOperation,
  TelemetryLevel,
  type AdaptationCommand,
  type CommandAck,
  type FieldReport,
  type RunAnnouncement,
  type SystemStatePacket,
  type TelemetryEvent,
  type TelemetryPacket,
} from '../../leyline/index.js';
import { BoundedCurve } from './bounded-curve.js';
import { enumName, EnumPrefix, stripPrefix } from './enum-names.js';
import { SeedLane } from './seed-lane.js';
import { CurveName, type CommandView, type CurveDelta, type RunDelta, type RunEventView, type RunSummary } from './view-types.js';

/** Telemetry sources and event names the view reads, as their subsystems spell them. */
const Source = { TAMIYO: 'tamiyo', KASMINA: 'kasmina' } as const;

/** Kasmina's seed events (src/kasmina/seed-events.ts) the swimlane reads. */
const KasminaSeedEvent = {
  STAGE_TRANSITION: 'stage_transition',
  CONTRIBUTION_MEASURED: 'contribution_measured',
  SEED_FOSSILIZED: 'seed_fossilized',
  SEED_CULLED: 'seed_culled',
  SEED_TERMINATED: 'seed_terminated',
} as const;

/** Kasmina events shown on the timeline whatever their level. */
const KASMINA_TIMELINE_EVENTS: ReadonlySet<string> = new Set([
  'gate_failure',
  'illegal_transition',
  'isolation_violation',
  'kernel_fetch_failed',
  KasminaSeedEvent.SEED_FOSSILIZED,
  KasminaSeedEvent.SEED_CULLED,
  KasminaSeedEvent.SEED_TERMINATED,
]);

/** Tamiyo's conservative-mode gauge (src/tamiyo/names.ts `TamiyoMetric.CONSERVATIVE_MODE`). */
const TAMIYO_CONSERVATIVE_MODE = 'tamiyo.conservative_mode';

/** Bounds of one run. */
export interface RunLimits {
  readonly maxPointsPerCurve: number;
  readonly maxSeeds: number;
  readonly maxIntervalsPerSeed: number;
  readonly maxAlphaPoints: number;
  readonly maxCommands: number;
  readonly maxEvents: number;
}

/** A command as the run keeps it (mutable: the ack and the field report fill it in). */
interface CommandRecord extends Omit<CommandView, 'status' | 'reason' | 'ackStep' | 'outcome'> {
  status: string;
  reason: string;
  ackStep?: number;
  outcome?: string;
  updatedSeq: number;
}

const CURVE_NAMES: readonly CurveName[] = Object.values(CurveName);

/** The name of a `SeedLifecycleStage` without its prefix. */
export function stageLabel(stage: SeedLifecycleStage): string {
  return enumName(SeedLifecycleStage, stage, EnumPrefix.SEED_STAGE);
}

/** One run's bounded state. */
export class RunState {
  readonly runId: string;
  readonly firstSeenMs: number;
  lastSeenMs: number;
  /** Sequence of the latest change of anything in the run. */
  updatedSeq = 0;
  phase: 'running' | 'ended' = 'running';
  endReason = '';
  experimentName = '';
  hostId = '';
  hostFamily = '';
  runSeed = '';
  epoch = 0;
  epochsPlanned = 0;
  globalStep = 0;
  validationAccuracy: number | undefined;
  validationLoss: number | undefined;
  trainingLoss: number | undefined;
  conservativeMode: number | undefined;
  commandsIssued = 0;
  commandsApplied = 0;
  commandsRefused = 0;
  seedsEvicted = 0;
  commandsDropped = 0;
  eventsDropped = 0;
  readonly #limits: RunLimits;
  readonly #curves: Record<CurveName, BoundedCurve>;
  readonly #seeds = new Map<string, SeedLane>();
  #seedsResetSeq = 0;
  #intervalsDroppedByEvicted = 0;
  readonly #commands = new Map<string, CommandRecord>();
  #commandsResetSeq = 0;
  readonly #events: RunEventView[] = [];
  #nextEventId = 1;

  constructor(runId: string, atMs: number, limits: RunLimits) {
    this.runId = runId;
    this.firstSeenMs = atMs;
    this.lastSeenMs = atMs;
    this.#limits = limits;
    const curves = {} as Record<CurveName, BoundedCurve>;
    for (const name of CURVE_NAMES) curves[name] = new BoundedCurve(limits.maxPointsPerCurve);
    this.#curves = curves;
  }

  /** True once the run announced its end. */
  get ended(): boolean {
    return this.phase === 'ended';
  }

  /** Curve points removed to stay bounded. */
  get pointsDecimated(): number {
    return CURVE_NAMES.reduce((sum, name) => sum + this.#curves[name].decimated, 0);
  }

  /** Stage intervals dropped to stay bounded. */
  get intervalsDropped(): number {
    let dropped = this.#intervalsDroppedByEvicted;
    for (const lane of this.#seeds.values()) dropped += lane.intervalsDropped;
    return dropped;
  }

  /** A Tolaria state packet (step or epoch end). */
  onState(packet: SystemStatePacket, seq: number, atMs: number): void {
    this.#touch(seq, atMs);
    const step = Number(packet.globalStep);
    if (step > this.globalStep) this.globalStep = step;
    if (packet.currentEpoch > this.epoch) this.epoch = packet.currentEpoch;
    if (packet.experimentName.length > 0) this.experimentName = packet.experimentName;
    const planned = packet.metrics?.epochsPlanned ?? 0;
    if (planned > 0) this.epochsPlanned = planned;
    if (packet.epochEnd) {
      this.validationAccuracy = packet.validationAccuracy;
      this.validationLoss = packet.validationLoss;
      this.trainingLoss = packet.trainingLoss;
      this.#curves[CurveName.VALIDATION_ACCURACY].push(step, packet.validationAccuracy, seq);
      this.#curves[CurveName.VALIDATION_LOSS].push(step, packet.validationLoss, seq);
      this.#curves[CurveName.TRAINING_LOSS].push(step, packet.trainingLoss, seq);
    } else {
      this.trainingLoss = packet.trainingLoss;
      this.#curves[CurveName.STEP_LOSS].push(step, packet.trainingLoss, seq);
    }
    for (const state of packet.seedStates) {
      if (state.seedId.length === 0) continue;
      const lane = this.#lane(state.seedId, step, seq);
      lane.observePlace(state.siteId, state.blueprintId, seq);
      lane.observeStage(stageLabel(state.stage), step, seq);
      if (state.metrics !== undefined) {
        lane.observeAlpha(state.metrics.alpha, step, seq);
        const contribution = state.metrics.counterfactualContribution;
        if (contribution !== undefined) lane.observeContribution(contribution, seq);
      }
    }
  }

  /** A telemetry packet of this run. */
  onTelemetry(packet: TelemetryPacket, seq: number, atMs: number): void {
    this.#touch(seq, atMs);
    const source = packet.sourceSubsystem;
    if (source === Source.TAMIYO) {
      const conservative = packet.metrics.find((m) => m.name === TAMIYO_CONSERVATIVE_MODE);
      if (conservative !== undefined) this.conservativeMode = conservative.value;
    }
    for (const event of packet.events) {
      if (source === Source.KASMINA) this.#kasminaEvent(event, seq);
      const shown =
        source === Source.TAMIYO ||
        (source === Source.KASMINA && KASMINA_TIMELINE_EVENTS.has(event.description)) ||
        event.level >= TelemetryLevel.WARNING;
      if (shown) this.#pushEvent(source, event.level, event.description, event.attributes, seq, atMs);
    }
  }

  /** An adaptation command issued to this run. */
  onCommand(command: AdaptationCommand, seq: number, atMs: number): void {
    this.#touch(seq, atMs);
    const existing = this.#commands.get(command.commandId);
    if (existing === undefined || existing.commandType === 'UNKNOWN') this.commandsIssued += 1;
    const op = command.payload.case === 'seedOperation' ? command.payload.value : undefined;
    const selection = command.metadata?.selection;
    const risk = command.metadata?.risk;
    const policy = command.metadata?.policy;
    const issuedAtMs =
      command.issuedAt === undefined ? atMs : Number(command.issuedAt.seconds) * 1_000 + Math.floor(command.issuedAt.nanos / 1e6);
    const record: CommandRecord = {
      commandId: command.commandId,
      commandType: enumName(CommandType, command.commandType, EnumPrefix.COMMAND_TYPE),
      operation: op === undefined ? '' : enumName(SeedOperation, op.operation, EnumPrefix.SEED_OPERATION),
      seedId: command.targetSeedId || (selection?.seedId ?? ''),
      siteId: op?.siteId ?? '',
      blueprintId: op?.blueprintId || (selection?.blueprintId ?? ''),
      issuedBy: command.issuedBy,
      issuedAtMs,
      step: this.globalStep,
      riskReason: risk === undefined || risk.reason === RiskReason.UNSPECIFIED ? '' : enumName(RiskReason, risk.reason),
      conservativeMode: risk?.conservativeMode ?? false,
      ...(policy === undefined ? {} : { riskScore: policy.riskScore, valueEstimate: policy.valueEstimate }),
      status: existing?.status ?? 'ISSUED',
      reason: existing?.reason ?? '',
      ...(existing?.ackStep === undefined ? {} : { ackStep: existing.ackStep }),
      ...(existing?.outcome === undefined ? {} : { outcome: existing.outcome }),
      updatedSeq: seq,
    };
    this.#putCommand(record, seq);
  }

  /** The acknowledgement of a command of this run. */
  onAck(ack: CommandAck, seq: number, atMs: number): void {
    this.#touch(seq, atMs);
    const status = enumName(CommandAckStatus, ack.status);
    const record = this.#commands.get(ack.commandId) ?? this.#placeholder(ack.commandId, ack.issuedBy, atMs, seq);
    if (record.status === 'ISSUED') {
      if (ack.status === CommandAckStatus.APPLIED) this.commandsApplied += 1;
      else this.commandsRefused += 1;
    }
    record.status = status;
    record.reason = ack.reason;
    record.ackStep = Number(ack.globalStep);
    record.updatedSeq = seq;
  }

  /** A field report on a command of this run. */
  onFieldReport(report: FieldReport, seq: number, atMs: number): void {
    this.#touch(seq, atMs);
    const outcome = enumName(FieldReportOutcome, report.outcome);
    const record = this.#commands.get(report.commandId);
    if (record !== undefined) {
      record.outcome = outcome;
      record.updatedSeq = seq;
    }
    const attributes = { command_id: report.commandId, seed_id: report.seedId, outcome };
    const level = report.outcome === FieldReportOutcome.REGRESSION ? TelemetryLevel.WARNING : TelemetryLevel.INFO;
    this.#pushEvent(Source.TAMIYO, level, 'field_report', attributes, seq, atMs);
  }

  /** The run's announcement (opening, before each epoch, at its end). */
  onAnnouncement(announcement: RunAnnouncement, seq: number, atMs: number): void {
    this.#touch(seq, atMs);
    if (announcement.host !== undefined) {
      this.hostId = announcement.host.hostId;
      this.hostFamily = announcement.host.family;
    }
    this.runSeed = announcement.seed.toString();
    const step = Number(announcement.globalStep);
    if (step > this.globalStep) this.globalStep = step;
    if (announcement.phase === RunPhase.ENDED) {
      this.phase = 'ended';
      this.endReason = announcement.reason;
    }
  }

  /** The run as the fleet list shows it. */
  summary(): RunSummary {
    let active = 0;
    let fossilized = 0;
    let culled = 0;
    for (const lane of this.#seeds.values()) {
      const stage = lane.fate?.fate ?? lane.stage;
      if (stage === 'FOSSILIZED') fossilized += 1;
      else if (stage === 'CULLED') culled += 1;
      else if (!lane.ended) active += 1;
    }
    return {
      runId: this.runId,
      phase: this.phase,
      endReason: this.endReason,
      experimentName: this.experimentName,
      hostId: this.hostId,
      hostFamily: this.hostFamily,
      runSeed: this.runSeed,
      epoch: this.epoch,
      epochsPlanned: this.epochsPlanned,
      globalStep: this.globalStep,
      ...(this.validationAccuracy === undefined ? {} : { validationAccuracy: this.validationAccuracy }),
      ...(this.validationLoss === undefined ? {} : { validationLoss: this.validationLoss }),
      ...(this.trainingLoss === undefined ? {} : { trainingLoss: this.trainingLoss }),
      seedsTotal: this.#seeds.size,
      seedsActive: active,
      seedsFossilized: fossilized,
      seedsCulled: culled,
      commandsIssued: this.commandsIssued,
      commandsApplied: this.commandsApplied,
      commandsRefused: this.commandsRefused,
      ...(this.conservativeMode === undefined ? {} : { conservativeMode: this.conservativeMode }),
      firstSeenMs: this.firstSeenMs,
      lastSeenMs: this.lastSeenMs,
    };
  }

  /** What changed since board sequence `since` (0: everything). */
  delta(since: number, seq: number): RunDelta {
    const full = since <= 0;
    const curves: Partial<Record<CurveName, CurveDelta>> = {};
    for (const name of CURVE_NAMES) {
      const delta = this.#curves[name].deltaSince(full ? 0 : since);
      if (delta !== undefined) curves[name] = delta;
      else if (full) curves[name] = { reset: true, points: [] };
    }
    const seedsReset = full || this.#seedsResetSeq > since;
    const commandsReset = full || this.#commandsResetSeq > since;
    return {
      runId: this.runId,
      seq,
      full,
      ...(full || this.updatedSeq > since ? { summary: this.summary() } : {}),
      curves,
      seeds: [...this.#seeds.values()].filter((lane) => seedsReset || lane.updatedSeq > since).map((lane) => lane.view()),
      seedsReset,
      commands: [...this.#commands.values()].filter((c) => commandsReset || c.updatedSeq > since).map(commandView),
      commandsReset,
      events: full ? [...this.#events] : this.#events.filter((e) => e.seq > since),
    };
  }

  #touch(seq: number, atMs: number): void {
    this.updatedSeq = seq;
    if (atMs > this.lastSeenMs) this.lastSeenMs = atMs;
  }

  #lane(seedId: string, step: number, seq: number): SeedLane {
    let lane = this.#seeds.get(seedId);
    if (lane !== undefined) return lane;
    if (this.#seeds.size >= this.#limits.maxSeeds) this.#evictSeed(seq);
    lane = new SeedLane(seedId, step, { maxIntervals: this.#limits.maxIntervalsPerSeed, maxAlphaPoints: this.#limits.maxAlphaPoints });
    this.#seeds.set(seedId, lane);
    return lane;
  }

  /** Drops the seed that ended longest ago, else the one seen longest ago. */
  #evictSeed(seq: number): void {
    let victim: SeedLane | undefined;
    for (const lane of this.#seeds.values()) {
      if (victim === undefined || (lane.ended && !victim.ended) || (lane.ended === victim.ended && lane.lastStep < victim.lastStep)) {
        victim = lane;
      }
    }
    if (victim === undefined) return;
    this.#seeds.delete(victim.seedId);
    this.#intervalsDroppedByEvicted += victim.intervalsDropped;
    this.seedsEvicted += 1;
    this.#seedsResetSeq = seq;
  }

  #kasminaEvent(event: TelemetryEvent, seq: number): void {
    const seedId = event.attributes.seed_id;
    if (seedId === undefined || seedId.length === 0) return;
    const lane = this.#seeds.get(seedId);
    switch (event.description) {
      case KasminaSeedEvent.STAGE_TRANSITION: {
        const step = Number(event.attributes.step ?? this.globalStep);
        const from = stripPrefix(event.attributes.from ?? '', EnumPrefix.SEED_STAGE);
        const to = stripPrefix(event.attributes.to ?? '', EnumPrefix.SEED_STAGE);
        if (to.length > 0 && Number.isFinite(step)) this.#lane(seedId, step, seq).observeTransition(from, to, step, seq);
        return;
      }
      case KasminaSeedEvent.CONTRIBUTION_MEASURED: {
        const contribution = Number(event.attributes.contribution);
        if (Number.isFinite(contribution)) lane?.observeContribution(contribution, seq);
        return;
      }
      case KasminaSeedEvent.SEED_FOSSILIZED:
      case KasminaSeedEvent.SEED_CULLED:
      case KasminaSeedEvent.SEED_TERMINATED: {
        const target = lane ?? this.#lane(seedId, this.globalStep, seq);
        const fate = event.description.replace('seed_', '').toUpperCase();
        target.observeFate({ fate, atStep: this.globalStep, reason: event.attributes.reason ?? '' }, seq);
        const contribution = Number(event.attributes.contribution);
        if (event.attributes.contribution !== undefined && Number.isFinite(contribution)) target.observeContribution(contribution, seq);
        target.observePlace(event.attributes.site_id ?? '', event.attributes.blueprint_id ?? '', seq);
        return;
      }
      default:
        return;
    }
  }

  #pushEvent(
    source: string,
    level: TelemetryLevel,
    description: string,
    attributes: Readonly<Record<string, string>>,
    seq: number,
    atMs: number,
  ): void {
    this.#events.push({
      id: this.#nextEventId++,
      seq,
      atMs,
      step: this.globalStep,
      source,
      level: enumName(TelemetryLevel, level),
      description,
      attributes: { ...attributes },
    });
    while (this.#events.length > this.#limits.maxEvents) {
      this.#events.shift();
      this.eventsDropped += 1;
    }
  }

  #placeholder(commandId: string, issuedBy: string, atMs: number, seq: number): CommandRecord {
    const record: CommandRecord = {
      commandId,
      commandType: 'UNKNOWN',
      operation: '',
      seedId: '',
      siteId: '',
      blueprintId: '',
      issuedBy,
      issuedAtMs: atMs,
      step: this.globalStep,
      riskReason: '',
      conservativeMode: false,
      status: 'ISSUED',
      reason: '',
      updatedSeq: seq,
    };
    this.#putCommand(record, seq);
    return record;
  }

  #putCommand(record: CommandRecord, seq: number): void {
    this.#commands.set(record.commandId, record);
    while (this.#commands.size > this.#limits.maxCommands) {
      const oldest = this.#commands.keys().next().value;
      if (oldest === undefined) break;
      this.#commands.delete(oldest);
      this.commandsDropped += 1;
      this.#commandsResetSeq = seq;
    }
  }
}

function commandView(record: CommandRecord): CommandView {
  const { updatedSeq: _updatedSeq, ...view } = record;
  return view;
}
