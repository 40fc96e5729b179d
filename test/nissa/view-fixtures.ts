/**
 * Real Leyline messages of a synthetic run, for the live view's tests: state packets (steps
 * and epoch ends) with seed states, Kasmina and Tamiyo telemetry, a command, its ack, a field
 * report and run announcements.
 */
import { create } from '@bufbuild/protobuf';
import {
  AdaptationCommandSchema,
  BusMessageType,
  CommandAckSchema,
  CommandAckStatus,
  CommandType,
  DecisionMetadataSchema,
  FieldReportOutcome,
  FieldReportSchema,
  HostDescriptorSchema,
  RiskMetadataSchema,
  RiskReason,
  RunAnnouncementSchema,
  RunPhase,
  SeedLifecycleStage,
  SeedMetricsSchema,
  SeedOperation,
  SeedStateSchema,
  SystemHealthSchema,
  SystemStatePacketSchema,
  TelemetryEventSchema,
  TelemetryLevel,
  TelemetryPacketSchema,
  TrainingMetricsSchema,
  type BusMessage,
} from '../../src/leyline/index.js';

/** A seed as a state packet reports it. */
export interface SeedInput {
  readonly seedId: string;
  readonly siteId?: string;
  readonly stage: SeedLifecycleStage;
  readonly alpha?: number;
  readonly contribution?: number;
}

/** A delivery: what `board.ingest` takes. */
export interface Delivery {
  readonly type: BusMessageType;
  readonly message: BusMessage;
}

/** A step or epoch-end state packet. */
export function statePacket(
  runId: string,
  input: {
    step: number;
    epoch: number;
    epochEnd?: boolean;
    trainingLoss?: number;
    accuracy?: number;
    validationLoss?: number;
    seeds?: readonly SeedInput[];
  },
): Delivery {
  return {
    type: BusMessageType.SYSTEM_STATE,
    message: create(SystemStatePacketSchema, {
      version: 1,
      trainingRunId: runId,
      experimentName: 'view-test',
      packetId: `${runId}-${input.step}-${input.epochEnd === true ? 'e' : 's'}`,
      globalStep: BigInt(input.step),
      currentEpoch: input.epoch,
      epochEnd: input.epochEnd ?? false,
      trainingLoss: input.trainingLoss ?? 1,
      validationAccuracy: input.accuracy ?? 0,
      validationLoss: input.validationLoss ?? 0,
      metrics: create(TrainingMetricsSchema, { epochsPlanned: 10 }),
      seedStates: (input.seeds ?? []).map((seed) =>
        create(SeedStateSchema, {
          seedId: seed.seedId,
          siteId: seed.siteId ?? 'block1',
          blueprintId: 'bp-widen-8',
          stage: seed.stage,
          metrics: create(SeedMetricsSchema, {
            alpha: seed.alpha ?? 0,
            ...(seed.contribution === undefined ? {} : { counterfactualContribution: seed.contribution }),
          }),
        }),
      ),
    }),
  };
}

/** A telemetry packet of `source` with events. */
export function telemetry(
  runId: string,
  source: string,
  events: readonly { description: string; level?: TelemetryLevel; attributes?: Record<string, string> }[],
  indicators: Record<string, string> = {},
): Delivery {
  return {
    type: BusMessageType.TELEMETRY,
    message: create(TelemetryPacketSchema, {
      packetId: `${source}-${Math.random()}`,
      sourceSubsystem: source,
      trainingRunId: runId,
      events: events.map((e, i) =>
        create(TelemetryEventSchema, {
          eventId: `e${i}`,
          description: e.description,
          level: e.level ?? TelemetryLevel.INFO,
          attributes: e.attributes ?? {},
        }),
      ),
      systemHealth: create(SystemHealthSchema, { indicators }),
    }),
  };
}

/** A GERMINATE command from Tamiyo. */
export function germinate(runId: string, commandId: string, seedId: string, reason = RiskReason.POLICY): Delivery {
  return {
    type: BusMessageType.ADAPTATION_COMMAND,
    message: create(AdaptationCommandSchema, {
      version: 1,
      commandId,
      commandType: CommandType.COMMAND_SEED,
      targetSeedId: seedId,
      issuedBy: 'tamiyo',
      trainingRunId: runId,
      payload: {
        case: 'seedOperation',
        value: { operation: SeedOperation.SEED_OP_GERMINATE, blueprintId: 'bp-widen-8', siteId: 'block1' },
      },
      metadata: create(DecisionMetadataSchema, { risk: create(RiskMetadataSchema, { reason, conservativeMode: false }) }),
    }),
  };
}

/** A command's acknowledgement. */
export function ack(runId: string, commandId: string, status: CommandAckStatus, step: number, reason = ''): Delivery {
  return {
    type: BusMessageType.COMMAND_ACK,
    message: create(CommandAckSchema, { commandId, trainingRunId: runId, status, reason, globalStep: BigInt(step), issuedBy: 'tamiyo' }),
  };
}

/** A field report on a command. */
export function fieldReport(runId: string, commandId: string, seedId: string, outcome: FieldReportOutcome): Delivery {
  return {
    type: BusMessageType.FIELD_REPORT,
    message: create(FieldReportSchema, { reportId: `r-${commandId}`, commandId, trainingRunId: runId, seedId, outcome }),
  };
}

/** A run announcement. */
export function announcement(runId: string, phase: RunPhase, step = 0, reason = ''): Delivery {
  return {
    type: BusMessageType.RUN_ANNOUNCEMENT,
    message: create(RunAnnouncementSchema, {
      trainingRunId: runId,
      phase,
      seed: 42n,
      globalStep: BigInt(step),
      reason,
      host: create(HostDescriptorSchema, { hostId: 'mlp-2x64', family: 'mlp' }),
    }),
  };
}

/** The stage path a seed walks to fossilization. */
export const FOSSIL_PATH: readonly SeedLifecycleStage[] = [
  SeedLifecycleStage.SEED_STAGE_GERMINATED,
  SeedLifecycleStage.SEED_STAGE_TRAINING,
  SeedLifecycleStage.SEED_STAGE_BLENDING,
  SeedLifecycleStage.SEED_STAGE_SHADOWING,
  SeedLifecycleStage.SEED_STAGE_PROBATIONARY,
  SeedLifecycleStage.SEED_STAGE_FOSSILIZED,
];

/**
 * A whole synthetic run: announcement, then `epochs` epochs of `stepsPerEpoch` step packets
 * and one epoch-end packet with rising accuracy; a command at epoch 1 and its ack; seed-1
 * moving one stage along {@link FOSSIL_PATH} per epoch from epoch 1; the end announcement.
 */
export function syntheticRun(runId: string, epochs: number, stepsPerEpoch: number): Delivery[] {
  const out: Delivery[] = [announcement(runId, RunPhase.RUNNING)];
  let step = 0;
  for (let epoch = 0; epoch < epochs; epoch += 1) {
    const pathIndex = epoch - 1;
    const seeds: SeedInput[] =
      pathIndex >= 0
        ? [
            {
              seedId: 'seed-1',
              stage: FOSSIL_PATH[Math.min(pathIndex, FOSSIL_PATH.length - 1)] ?? SeedLifecycleStage.SEED_STAGE_FOSSILIZED,
              alpha: Math.min(1, Math.max(0, (pathIndex - 1) / 3)),
              ...(pathIndex >= 3 ? { contribution: 0.01 * pathIndex } : {}),
            },
          ]
        : [];
    if (epoch === 1) {
      out.push(germinate(runId, `${runId}-cmd-1`, 'seed-1'));
      out.push(ack(runId, `${runId}-cmd-1`, CommandAckStatus.APPLIED, step));
    }
    for (let i = 0; i < stepsPerEpoch; i += 1) {
      step += 1;
      out.push(statePacket(runId, { step, epoch, trainingLoss: 2 / (1 + step / 10), seeds }));
    }
    out.push(
      statePacket(runId, {
        step,
        epoch,
        epochEnd: true,
        trainingLoss: 2 / (1 + step / 10),
        accuracy: 0.5 + 0.04 * epoch,
        validationLoss: 1.5 - 0.1 * epoch,
        seeds,
      }),
    );
  }
  out.push(announcement(runId, RunPhase.ENDED, step, 'run_completed'));
  return out;
}

export { CommandAckStatus, FieldReportOutcome, RiskReason, RunPhase, SeedLifecycleStage, TelemetryLevel, BusMessageType };
