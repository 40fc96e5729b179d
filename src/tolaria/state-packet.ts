/**
 * Tolaria's {@link SystemStatePacket}s (reference prototype-tolaria-oona-nissa-weatherlight
 * §2.6): one per step for the controller, one per epoch published, with the typed
 * `TrainingMetrics` holding only what is measured (GPU fields and gradient conflict stay
 * at their defaults). Departures (§2.6 quirks): `global_step` is the real step count; the
 * epoch packet's `validation_*` is a real validation pass and there is no completion
 * packet; no placeholder ids; the packet handed to the controller is never mutated, so
 * its hook latencies describe the *previous* step.
 */
import os from 'node:os';
import { clone, create } from '@bufbuild/protobuf';
import { buildTrainingMetrics, type Clock, type TrainingMetricsInput } from '../core/index.js';
import {
  HardwareContextSchema,
  SeedStateSchema,
  SiteSignalSchema,
  SystemStatePacketSchema,
  type HardwareContext,
  type SeedState,
  type SystemStatePacket,
} from '../leyline/index.js';
import { TOLARIA_SOURCE } from './names.js';

/** Contract version of the packets Tolaria builds. */
export const STATE_PACKET_VERSION = 1;

/** Inputs shared by step and epoch packets. */
export interface StatePacketInput {
  readonly trainingRunId: string;
  readonly experimentName: string;
  readonly epoch: number;
  readonly globalStep: number;
  readonly trainingLoss: number;
  /** Latest validation results, when any epoch has been validated. */
  readonly validation?: { readonly loss: number; readonly accuracy: number } | undefined;
  readonly metrics: TrainingMetricsInput;
  readonly seedStates: readonly SeedState[];
  /** Per-site growth signals (epoch packets of a growing run). @default none */
  readonly siteSignals?: readonly SiteSignalInput[];
  readonly clock: Clock;
}

/** One site's growth signal (see `SiteSignal` in the contract). */
export interface SiteSignalInput {
  readonly siteId: string;
  /** Top singular value of `M = uᵀ·G` at a WIDEN site. */
  readonly widenGradientNorm: number;
}

/** Packet id of the step packet after `globalStep` steps. */
export function stepPacketId(trainingRunId: string, globalStep: number): string {
  return `${trainingRunId}-step-${globalStep}`;
}

/** Packet id of epoch `epoch`'s packet. */
export function epochPacketId(trainingRunId: string, epoch: number): string {
  return `${trainingRunId}-epoch-${epoch}`;
}

function build(input: StatePacketInput, packetId: string, hardware: HardwareContext | undefined, epochEnd: boolean): SystemStatePacket {
  return create(SystemStatePacketSchema, {
    version: STATE_PACKET_VERSION,
    currentEpoch: input.epoch,
    validationAccuracy: input.validation?.accuracy ?? 0,
    validationLoss: input.validation?.loss ?? 0,
    timestampNs: BigInt(Math.round(input.clock.wallMs())) * 1_000_000n,
    ...(hardware === undefined ? {} : { hardwareContext: hardware }),
    seedStates: [...input.seedStates],
    siteSignals: (input.siteSignals ?? []).map((s) =>
      create(SiteSignalSchema, { siteId: s.siteId, widenGradientNorm: s.widenGradientNorm }),
    ),
    packetId,
    globalStep: BigInt(input.globalStep),
    // A NaN loss is a real signal and travels as NaN in this float field.
    trainingLoss: input.trainingLoss,
    sourceSubsystem: TOLARIA_SOURCE,
    trainingRunId: input.trainingRunId,
    experimentName: input.experimentName,
    metrics: buildTrainingMetrics(input.metrics),
    epochEnd,
  });
}

/** The packet of one optimizer step (no hardware context, as in the prototype). */
export function buildStepState(input: StatePacketInput): SystemStatePacket {
  return build(input, stepPacketId(input.trainingRunId, input.globalStep), undefined, false);
}

/** The packet of one finished epoch, with the host's hardware context. */
export function buildEpochState(input: StatePacketInput & { readonly cpuUtilPercent?: number }): SystemStatePacket {
  return build(input, epochPacketId(input.trainingRunId, input.epoch), hardwareContext(input.cpuUtilPercent), true);
}

/**
 * The executor's seed states, with the gradient norm measured by the trainer for seeds
 * whose site has a hook (copies; the executor's are not touched).
 */
export function withGradientNorms(
  seeds: readonly SeedState[],
  hookNorms: readonly { readonly siteId: string; readonly norm: number }[] = [],
): SeedState[] {
  if (hookNorms.length === 0) return [...seeds];
  const bySite = new Map(hookNorms.map((h) => [h.siteId, h.norm]));
  return seeds.map((seed) => {
    const norm = bySite.get(seed.siteId);
    if (norm === undefined) return seed;
    const copy = clone(SeedStateSchema, seed);
    copy.gradientNorm = norm;
    return copy;
  });
}

const GIB = 1024 ** 3;

/**
 * What the trainer can say about the machine: CPU device, total and available memory
 * (`os.totalmem`/`os.freemem`), and the process's CPU utilisation when measured. The
 * prototype's GPU fields (temperature, compute capability) stay unset on CPU.
 */
export function hardwareContext(cpuUtilPercent?: number): HardwareContext {
  return create(HardwareContextSchema, {
    deviceType: 'cpu',
    deviceId: '0',
    totalMemoryGb: os.totalmem() / GIB,
    availableMemoryGb: os.freemem() / GIB,
    utilizationPercent: cpuUtilPercent === undefined ? 0 : Math.min(100, Math.max(0, cpuUtilPercent / os.availableParallelism())),
  });
}

/**
 * Process CPU utilisation between two readings, in percent of one core (can exceed 100
 * on several cores), from `process.cpuUsage` — undefined when no wall time elapsed.
 *
 * With `minWindowMs`, a reading closes a window only once it is that long; a call before
 * then returns the last closed window's utilisation (undefined before the first). A step
 * of a few milliseconds is too short a window to say much, and `process.cpuUsage` is a
 * system call: in a spirals run on a loaded machine it took 0.5 ms per call on average
 * (3 µs in an idle process; the syscall is where the scheduler switches the process out).
 */
export class CpuMeter {
  readonly #minWindowMs: number;
  #cpu = process.cpuUsage();
  #wallMs: number;
  #last: number | undefined;

  constructor(
    private readonly clock: Clock,
    options: { readonly minWindowMs?: number } = {},
  ) {
    this.#minWindowMs = options.minWindowMs ?? 0;
    this.#wallMs = clock.monotonicMs();
  }

  /** Utilisation since the previous closed window (or construction); closes the window when it is long enough. */
  sample(): number | undefined {
    const now = this.clock.monotonicMs();
    const wall = now - this.#wallMs;
    if (this.#minWindowMs > 0 && wall < this.#minWindowMs) return this.#last;
    const cpu = process.cpuUsage(this.#cpu);
    this.#cpu = process.cpuUsage();
    this.#wallMs = now;
    if (!(wall > 0)) return undefined;
    this.#last = ((cpu.user + cpu.system) / 1000 / wall) * 100;
    return this.#last;
  }
}
