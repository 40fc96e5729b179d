/**
 * Kasmina's command path: the verifier first, then the dependency guard, then one
 * dispatcher over every `CommandType` and `SeedOperation`, reading structured fields only.
 * A command Kasmina cannot apply throws a typed error (it is refused, never accepted and
 * dropped); what each command does: docs/architecture.md (Kasmina, command path).
 */
import { type DependencyGuard, ErrorCode, EsperError, isEsperError, validateCommandDependencies, type EventInput } from '../core/index.js';
import type { KarnCatalog } from '../karn/index.js';
import {
  BlendModeSchema,
  CircuitBreakerState,
  CommandType,
  CommandTypeSchema,
  EmergencyLevel,
  SeedLifecycleStage,
  SeedOperation,
  SeedOperationSchema,
  TelemetryLevel,
  type AdaptationCommand,
  type CommandSeedOperation,
  type SeedSiteDescriptor,
} from '../leyline/index.js';
import type { CommandVerifier } from '../security/index.js';
import { resolveBlendPlan, type BlendPlan } from './blending.js';
import { ACTIVE_STAGES, type ExecutorState } from './executor-state.js';
import type { ExecutorTelemetry } from './executor-telemetry.js';
import { evaluateG0 } from './gates.js';
import type { KernelLoader } from './kernel-loader.js';
import { gateName } from './lifecycle.js';
import type { MemoryGovernor } from './memory.js';
import type { PrefetchCoordinator } from './prefetch.js';
import type { SeedDriver } from './seed-driver.js';
import { SeedEvent } from './seed-events.js';
import { newSeed } from './seed.js';

/** What the dispatcher works with. */
export interface CommandDispatcherOptions {
  readonly trainingRunId: string;
  readonly sites: ReadonlyMap<string, SeedSiteDescriptor>;
  readonly verifier: CommandVerifier;
  readonly guard: DependencyGuard;
  readonly catalog: KarnCatalog;
  readonly state: ExecutorState;
  readonly telemetry: ExecutorTelemetry;
  readonly driver: SeedDriver;
  readonly loader: KernelLoader;
  readonly prefetch: PrefetchCoordinator | undefined;
  readonly memory: MemoryGovernor | undefined;
}

/** Verifies, guards and applies the commands Kasmina owns. */
export class CommandDispatcher {
  readonly #o: CommandDispatcherOptions;

  constructor(options: CommandDispatcherOptions) {
    this.#o = options;
  }

  /**
   * Verifies, guards and applies one command at `step` of `epoch`.
   * @throws EsperError `COMMAND_REJECTED` (verifier, with `details.reason`),
   *   `DependencyViolationError`, `KASMINA_GATE_FAILED` (G0), `KASMINA_SEED_NOT_FOUND`,
   *   `KASMINA_ILLEGAL_TRANSITION`, `COMMAND_NOT_APPLIED` (a type Kasmina does not own).
   */
  async apply(command: AdaptationCommand, step: number, epoch: number, signal: AbortSignal | undefined): Promise<void> {
    const { verifier, state } = this.#o;
    this.#o.memory?.cleanup();
    verifier.maintenance();
    const verdict = verifier.verify(command);
    if (!verdict.ok) {
      throw new EsperError(ErrorCode.COMMAND_REJECTED, `command ${command.commandId} rejected: ${verdict.reason}`, {
        details: { reason: verdict.reason, command_id: command.commandId },
      });
    }
    this.#guard(command);
    state.step = Math.max(state.step, step);
    state.epoch = epoch;
    await this.#dispatch(command, signal);
    state.counters.commandsApplied += 1;
  }

  #guard(command: AdaptationCommand): void {
    const { guard, trainingRunId, catalog } = this.#o;
    validateCommandDependencies(guard, command);
    if (command.trainingRunId !== trainingRunId) {
      guard.fail({
        dependencyType: 'training_run_id',
        identifier: command.commandId,
        reason: `command ${command.commandId} is for run ${command.trainingRunId}, not ${trainingRunId}`,
        details: { command_id: command.commandId },
      });
    }
    if (command.payload.case === 'seedOperation' && command.payload.value.operation === SeedOperation.SEED_OP_GERMINATE) {
      const blueprintId = command.payload.value.blueprintId;
      if (!catalog.has(blueprintId)) {
        guard.fail({
          dependencyType: 'blueprint_id',
          identifier: blueprintId,
          reason: `blueprint ${blueprintId} is not in the catalog; no fallback kernel is attached`,
          details: { command_id: command.commandId, seed_id: command.targetSeedId },
        });
      }
    }
  }

  async #dispatch(command: AdaptationCommand, signal: AbortSignal | undefined): Promise<void> {
    const payload = command.payload;
    switch (command.commandType) {
      case CommandType.COMMAND_SEED:
        if (payload.case === 'seedOperation') await this.#seedCommand(command, payload.value, signal);
        return;
      case CommandType.COMMAND_PAUSE:
        this.#pause(command);
        return;
      case CommandType.COMMAND_CIRCUIT_BREAKER:
        if (payload.case === 'circuitBreaker') this.#forceBreaker(payload.value.desiredState, payload.value.rationale);
        return;
      case CommandType.COMMAND_EMERGENCY:
        if (payload.case === 'emergency') this.#emergency(payload.value.level, payload.value.reason);
        return;
      default: {
        // OPTIMIZER and ROLLBACK are Tolaria's; nothing applies STRUCTURAL_PRUNING.
        const type = enumName(CommandTypeSchema.values, command.commandType);
        this.#o.telemetry.global({
          description: SeedEvent.UNSUPPORTED_COMMAND,
          level: TelemetryLevel.WARNING,
          attributes: { command_id: command.commandId, command_type: type },
        });
        throw new EsperError(ErrorCode.COMMAND_NOT_APPLIED, `Kasmina does not apply ${type} (command ${command.commandId})`, {
          details: { reason: 'unsupported_command', command_id: command.commandId, command_type: type },
        });
      }
    }
  }

  async #seedCommand(command: AdaptationCommand, operation: CommandSeedOperation, signal: AbortSignal | undefined): Promise<void> {
    const { state, driver, telemetry } = this.#o;
    const seedId = command.targetSeedId;
    const opName = enumName(SeedOperationSchema.values, operation.operation);
    const event: EventInput = {
      description: SeedEvent.SEED_OPERATION,
      attributes: {
        command_id: command.commandId,
        operation: opName,
        seed_id: seedId,
        blueprint_id: operation.blueprintId,
        site_id: operation.siteId,
      },
    };
    if (operation.operation === SeedOperation.SEED_OP_GERMINATE) {
      telemetry.global(event);
      await this.#germinate(command, operation, signal);
      return;
    }
    const seed = state.seeds.get(seedId);
    if (seed === undefined) {
      telemetry.global({
        ...event,
        description: SeedEvent.SEED_OPERATION_IGNORED,
        level: TelemetryLevel.WARNING,
        attributes: { ...event.attributes, reason: 'unknown seed' },
      });
      throw new EsperError(ErrorCode.KASMINA_SEED_NOT_FOUND, `no seed ${seedId} for ${opName}`, {
        details: { seed_id: seedId, operation: opName, reason: `unknown seed ${seedId}` },
      });
    }
    seed.events.push(event);
    switch (operation.operation) {
      case SeedOperation.SEED_OP_CULL:
        driver.requireTransition(seed, SeedLifecycleStage.SEED_STAGE_CULLED);
        driver.cull(seed, 'cull_command');
        return;
      case SeedOperation.SEED_OP_CANCEL:
        if (seed.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_FOSSILIZED) {
          driver.requireTransition(seed, SeedLifecycleStage.SEED_STAGE_TERMINATED);
          driver.terminate(seed, 'cancel_command');
          return;
        }
        driver.requireTransition(seed, SeedLifecycleStage.SEED_STAGE_CULLED);
        driver.cull(seed, 'cancel_command');
        return;
      case SeedOperation.SEED_OP_FOSSILIZE:
        driver.requireTransition(seed, SeedLifecycleStage.SEED_STAGE_FOSSILIZED);
        driver.decideFossilize(seed);
        return;
      default:
        if (operation.resumeFlag === true) {
          if (seed.progress.paused) {
            driver.resume(seed);
            seed.events.push({ description: SeedEvent.SEED_RESUMED, attributes: { seed_id: seed.seedId } });
          } else {
            seed.events.push({ description: SeedEvent.SEED_OPERATION_IGNORED, attributes: { seed_id: seed.seedId, reason: 'not paused' } });
          }
          return;
        }
        seed.events.push({
          description: SeedEvent.SEED_OPERATION_IGNORED,
          attributes: { seed_id: seed.seedId, operation: opName, reason: 'Kasmina advances the lifecycle through its gates' },
        });
    }
  }

  /** DORMANT → GERMINATED through G0 (a failure throws `KASMINA_GATE_FAILED`), then the kernel load. */
  async #germinate(command: AdaptationCommand, operation: CommandSeedOperation, signal: AbortSignal | undefined): Promise<void> {
    const { state, driver, catalog, telemetry } = this.#o;
    const seedId = command.targetSeedId;
    const siteId = operation.siteId;
    const site = this.#o.sites.get(siteId);
    let plan: BlendPlan | undefined;
    let blendError: string | undefined;
    if (site !== undefined) {
      try {
        plan = resolveBlendPlan(operation, command.metadata?.blend, site);
      } catch (error) {
        if (!isEsperError(error, ErrorCode.KASMINA_BLEND_CONFIG_INVALID)) throw error;
        blendError = String(error.details?.['reason'] ?? error.message);
        if (blendError === SeedEvent.CONFIDENCE_GATE_MISSING_LOGITS) {
          telemetry.global({
            description: SeedEvent.CONFIDENCE_GATE_MISSING_LOGITS,
            level: TelemetryLevel.WARNING,
            attributes: { seed_id: seedId, command_id: command.commandId },
          });
        }
      }
    }
    const existing = state.seeds.get(seedId);
    const occupantId = state.occupancy.get(siteId);
    const occupant = occupantId === undefined ? undefined : state.seeds.get(occupantId);
    const embargoUntil = state.embargo.get(siteId);
    const embargoed = embargoUntil !== undefined && (state.step < embargoUntil || occupant !== undefined);
    const g0 = evaluateG0({
      blueprintId: operation.blueprintId,
      siteId,
      siteExists: site !== undefined,
      seedIdInUse: existing !== undefined && !existing.fate.retire,
      siteOccupied: occupant !== undefined && !embargoed,
      siteEmbargoed: embargoed,
      blueprintFitsSite: site !== undefined && catalog.familyOf(operation.blueprintId).fits(site),
      ...(blendError === undefined ? {} : { blendConfigError: blendError }),
    });
    if (!g0.passed || site === undefined || plan === undefined) {
      driver.recordGate(undefined, seedId, g0);
      const gate = gateName(g0.gate);
      throw new EsperError(ErrorCode.KASMINA_GATE_FAILED, `seed ${seedId} not germinated: ${gate} failed (${g0.reason})`, {
        details: { reason: `${gate}: ${g0.reason}`, gate, gate_reason: g0.reason, seed_id: seedId, command_id: command.commandId },
      });
    }
    if (existing !== undefined) state.seeds.delete(seedId);
    const seed = newSeed({
      seedId,
      siteId,
      site,
      blueprintId: operation.blueprintId,
      commandId: command.commandId,
      germinatedEpoch: state.epoch,
      plan,
      lossAtGermination: state.lossEwma,
    });
    state.seeds.set(seedId, seed);
    state.occupancy.set(siteId, seedId);
    driver.recordGate(seed, seedId, g0);
    driver.move(seed, SeedLifecycleStage.SEED_STAGE_GERMINATED);
    seed.events.push({
      description: SeedEvent.BLEND_CONFIG,
      attributes: {
        seed_id: seedId,
        mode: enumName(BlendModeSchema.values, plan.mode),
        source: plan.source,
        alpha_vec_len: plan.alphaVec.length,
      },
    });
    const prefetch = this.#o.prefetch;
    if (prefetch !== undefined) {
      this.#o.loader.request(seed, prefetch, this.#o.trainingRunId);
      return;
    }
    const load = await this.#o.loader.load(seed, signal);
    if (signal?.aborted === true || seed.lifecycle.stage !== SeedLifecycleStage.SEED_STAGE_GERMINATED) {
      // Culled or abandoned while the fetch ran: the kernel is not needed.
      if (load.ok) load.fetched.module.dispose();
      return;
    }
    driver.graft(seed, load);
  }

  #pause(command: AdaptationCommand): void {
    const seed = command.targetSeedId === '' ? undefined : this.#o.state.seeds.get(command.targetSeedId);
    if (seed === undefined || !ACTIVE_STAGES.has(seed.lifecycle.stage)) {
      this.#o.telemetry.global({
        description: SeedEvent.PAUSE_ACKNOWLEDGED,
        attributes: { command_id: command.commandId, seed_id: command.targetSeedId, risk_reason: command.metadata?.risk?.reason ?? 0 },
      });
      return;
    }
    this.#o.driver.pause(seed);
    seed.events.push({
      description: SeedEvent.SEED_PAUSED,
      level: TelemetryLevel.WARNING,
      attributes: { seed_id: seed.seedId, command_id: command.commandId },
    });
  }

  #forceBreaker(state: CircuitBreakerState, rationale: string): void {
    const telemetry = this.#o.telemetry;
    if (state !== CircuitBreakerState.CIRCUIT_STATE_OPEN && state !== CircuitBreakerState.CIRCUIT_STATE_CLOSED) {
      telemetry.global({
        description: SeedEvent.BREAKER_EVENT,
        level: TelemetryLevel.WARNING,
        attributes: { action: 'invalid', desired_state: state },
      });
      return;
    }
    this.#o.loader.force(state, rationale || 'manual');
    telemetry.global({
      description: SeedEvent.BREAKER_EVENT,
      level: TelemetryLevel.WARNING,
      attributes: { action: 'forced', breaker: 'kernel_fetch', desired_state: state, reason: rationale || 'manual' },
    });
  }

  #emergency(level: EmergencyLevel, reason: string): void {
    const cleared = this.#o.memory?.emergencyCleanup().kernelCacheCleared ?? 0;
    let paused = 0;
    if (level >= EmergencyLevel.CONSERVATIVE) {
      for (const seed of this.#o.state.live()) {
        if (!ACTIVE_STAGES.has(seed.lifecycle.stage) || seed.progress.paused) continue;
        this.#o.driver.pause(seed);
        paused += 1;
      }
    }
    this.#o.telemetry.global({
      description: SeedEvent.EMERGENCY_CLEANUP,
      level: TelemetryLevel.CRITICAL,
      attributes: { level, reason, kernel_cache_cleared: cleared, seeds_paused: paused },
    });
  }
}

function enumName(values: readonly { number: number; name: string }[], value: number): string {
  return values.find((v) => v.number === value)?.name ?? `UNKNOWN_${value}`;
}
