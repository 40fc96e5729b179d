/**
 * The hot-swap holder of the GNN policy: the live network and at most one verified
 * replacement, swapped between proposals, never inside one.
 */
import {
  buildTelemetryPacket,
  ErrorCode,
  EsperError,
  systemClock,
  type Clock,
  type MetricInput,
  type TelemetrySink,
  optionChecks,
} from '../core/index.js';
import { TelemetryLevel } from '../leyline/index.js';
import type { TamiyoGnn } from './gnn.js';
import { PolicyUpdateEvent, PolicyUpdateMetric, TAMIYO_TELEMETRY_SOURCE } from './names.js';
import { architectureOf, type LoadedPolicy } from './policy-weights.js';

/** A policy that is live or waiting to go live. */
export interface SlotPolicy {
  readonly gnn: TamiyoGnn;
  /** The policy version label (`tamiyo_policy_version` of the update that brought it). */
  readonly version: string;
}

/** Result of {@link PolicySlot.swapIfPending}; `from === to` when nothing was pending. */
export interface PolicySwapResult {
  readonly swapped: boolean;
  readonly from: string;
  readonly to: string;
}

/** Options of {@link PolicySlot}. */
export interface PolicySlotOptions {
  /** Receives the INFO `policy_update_applied` packet of each swap. @default none */
  readonly telemetry?: TelemetrySink;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Run id stamped on telemetry packets. @default '' */
  readonly trainingRunId?: string;
}

/** Counters of a {@link PolicySlot}. */
export interface PolicySlotSnapshot {
  readonly version: string;
  /** Version of the staged policy, if one waits. */
  readonly pendingVersion: string | undefined;
  readonly swapsTotal: number;
  readonly supersededTotal: number;
}

/**
 * The hot-swap holder: the live policy and at most one staged replacement. The slot owns
 * both GNNs and disposes them when they are replaced or on {@link PolicySlot.dispose}.
 *
 * Atomicity comes from the call discipline: inference is synchronous, and the service
 * calls {@link PolicySlot.swapIfPending} between steps, so no forward sees a half-swapped
 * policy. Read {@link PolicySlot.current} at the start of each step and do not keep its
 * `gnn` across a swap — the old model is disposed by the swap.
 */
export class PolicySlot {
  #current: SlotPolicy;
  #pending: SlotPolicy | undefined;
  readonly #architecture: string;
  readonly #telemetry: TelemetrySink | undefined;
  readonly #clock: Clock;
  readonly #trainingRunId: string;
  #swapsTotal = 0;
  #supersededTotal = 0;
  #disposed = false;

  /** Takes ownership of `initial.gnn`. */
  constructor(initial: SlotPolicy, options: PolicySlotOptions = {}) {
    if (initial.gnn.disposed) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'PolicySlot initial gnn is disposed', { details: { field: 'initial' } });
    }
    optionChecks('PolicySlot').nonEmptyString('version', initial.version);
    this.#current = { gnn: initial.gnn, version: initial.version };
    this.#architecture = architectureOf(initial.gnn.config);
    this.#telemetry = options.telemetry;
    this.#clock = options.clock ?? systemClock;
    this.#trainingRunId = options.trainingRunId ?? '';
  }

  /** The live policy. */
  get current(): SlotPolicy {
    this.#assertLive();
    return this.#current;
  }

  /** The staged policy's version, if one waits for the next swap. */
  get pendingVersion(): string | undefined {
    return this.#pending?.version;
  }

  /** The architecture string every staged policy must have (the initial policy's). */
  get architecture(): string {
    return this.#architecture;
  }

  /**
   * Stages a verified policy for the next {@link PolicySlot.swapIfPending}, taking
   * ownership of `loaded.gnn`. A policy already staged is disposed and replaced (only the
   * newest waits). Throws — leaving ownership with the caller — when the slot is disposed
   * (`INVALID_STATE`), the GNN is disposed or already held by the slot
   * (`INVALID_ARGUMENT`), or its architecture differs (`TAMIYO_POLICY_INVALID`).
   */
  stage(loaded: Pick<LoadedPolicy, 'gnn' | 'version'>): void {
    this.#assertLive();
    const { gnn, version } = loaded;
    if (gnn.disposed) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'cannot stage a disposed policy', { details: { version } });
    }
    if (gnn === this.#current.gnn || gnn === this.#pending?.gnn) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'policy is already held by the slot', { details: { version } });
    }
    if (architectureOf(gnn.config) !== this.#architecture) {
      throw new EsperError(ErrorCode.TAMIYO_POLICY_INVALID, 'staged policy has a different architecture than the live one', {
        details: { version },
      });
    }
    const superseded = this.#pending;
    this.#pending = { gnn, version };
    if (superseded !== undefined) {
      this.#supersededTotal += 1;
      superseded.gnn.dispose();
    }
  }

  /**
   * Makes the staged policy live, if there is one, and disposes the one it replaces. Call
   * between steps; the next forward uses the new weights.
   */
  swapIfPending(): PolicySwapResult {
    this.#assertLive();
    const next = this.#pending;
    const previous = this.#current;
    if (next === undefined) return { swapped: false, from: previous.version, to: previous.version };
    this.#current = next;
    this.#pending = undefined;
    this.#swapsTotal += 1;
    previous.gnn.dispose();
    this.#telemetry?.emit(
      buildTelemetryPacket({
        source: TAMIYO_TELEMETRY_SOURCE,
        clock: this.#clock,
        trainingRunId: this.#trainingRunId,
        events: [
          {
            description: PolicyUpdateEvent.APPLIED,
            level: TelemetryLevel.INFO,
            attributes: { from: previous.version, to: next.version },
          },
        ],
      }),
    );
    return { swapped: true, from: previous.version, to: next.version };
  }

  /** Counters and versions. */
  snapshot(): PolicySlotSnapshot {
    return {
      version: this.#current.version,
      pendingVersion: this.#pending?.version,
      swapsTotal: this.#swapsTotal,
      supersededTotal: this.#supersededTotal,
    };
  }

  /** `tamiyo.policy_update.{swaps_total, superseded_total, pending}`. */
  metrics(): MetricInput[] {
    return [
      { name: PolicyUpdateMetric.SWAPS_TOTAL, value: this.#swapsTotal, unit: 'count' },
      { name: PolicyUpdateMetric.SUPERSEDED_TOTAL, value: this.#supersededTotal, unit: 'count' },
      { name: PolicyUpdateMetric.PENDING, value: this.#pending === undefined ? 0 : 1, unit: 'count' },
    ];
  }

  /** Whether {@link PolicySlot.dispose} ran. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Disposes the live and the staged policy. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#pending?.gnn.dispose();
    this.#pending = undefined;
    this.#current.gnn.dispose();
  }

  #assertLive(): void {
    if (this.#disposed) throw new EsperError(ErrorCode.INVALID_STATE, 'PolicySlot is disposed');
  }
}
