/**
 * Walks seeds through their lifecycle: grafts a loaded kernel (G1), advances each seed by
 * one step (stage timers, the alpha ramp, isolation checks), measures and records the
 * gates G1–G5, and culls, resets, pauses or terminates seeds. The lifecycle table and what
 * each gate measures: docs/architecture.md (Kasmina).
 */
import { describeError, ErrorCode, EsperError, isEsperError, optionChecks, type EsperSettings } from '../core/index.js';
import { SeedLifecycleGate, SeedLifecycleStage, siteOutputShape, TelemetryLevel } from '../leyline/index.js';
import { seededRng, type Rng } from '../tensor/index.js';
import type { SeedModule } from '../karn/index.js';
import type { HostModel, StepSignals } from '../tolaria/index.js';
import { alphaSchedule } from './blending.js';
import { ACTIVE_STAGES, type ExecutorState } from './executor-state.js';
import type { ExecutorTelemetry } from './executor-telemetry.js';
import { evaluateG1, evaluateG2, evaluateG3, evaluateG4, evaluateG5, G2_MAX_LOSS_REGRESSION, type GateResult } from './gates.js';
import { checkIsolation, type IsolationMonitor } from './isolation.js';
import { gateName, isTransitionAllowed, stageName } from './lifecycle.js';
import type { PrefetchCoordinator } from './prefetch.js';
import type { ParameterRegistry } from './registry.js';
import { SeedEvent } from './seed-events.js';
import { PROBE_BATCH, type SeedSlot, type SeedSlotOptions, type SeedSlotPhase } from './seed-slot.js';
import { meanGradientNorm, recordGradientNorm, type KernelLoad, type Seed } from './seed.js';

/** Lifecycle settings of the executor (the `kasmina` settings section). */
export type KasminaLifecycleSettings = Pick<
  EsperSettings['kasmina'],
  | 'kernelLatencyBudgetMs'
  | 'trainingSteps'
  | 'blendingSteps'
  | 'alphaTemperature'
  | 'shadowingSteps'
  | 'probationSteps'
  | 'minContribution'
  | 'embargoSteps'
  | 'isolationCheckEverySteps'
> & {
  /**
   * `enforce`: a kernel fetch over `kernelLatencyBudgetMs` fails G2 and counts against the
   * kernel-fetch breaker. `observe`: it is reported (G2's `latency_ms`, `budget_ms`) and
   * fails nothing, so a run does not depend on machine load (`core.latencyBudgets`).
   * @default 'enforce'
   */
  readonly latencyBudgets?: 'enforce' | 'observe';
};

/**
 * `settings` checked field by field (the ranges of the `kasmina` settings section), so that
 * settings not read through `loadSettings` fail at construction rather than misbehave — an
 * `isolationCheckEverySteps` of 0 would switch the isolation checks off.
 * @throws EsperError `INVALID_ARGUMENT` naming the first bad field.
 */
export function resolveLifecycleSettings(settings: KasminaLifecycleSettings): KasminaLifecycleSettings {
  const check = optionChecks('KasminaLifecycleSettings');
  const steps = (field: keyof KasminaLifecycleSettings, min: number): number => check.integer(field, settings[field], { min });
  return {
    kernelLatencyBudgetMs: check.positive('kernelLatencyBudgetMs', settings.kernelLatencyBudgetMs),
    trainingSteps: steps('trainingSteps', 1),
    blendingSteps: steps('blendingSteps', 1),
    alphaTemperature: check.positive('alphaTemperature', settings.alphaTemperature),
    shadowingSteps: steps('shadowingSteps', 1),
    probationSteps: steps('probationSteps', 1),
    minContribution: check.number('minContribution', settings.minContribution, { min: -1, max: 1 }),
    embargoSteps: steps('embargoSteps', 0),
    isolationCheckEverySteps: steps('isolationCheckEverySteps', 1),
    latencyBudgets: check.oneOf('latencyBudgets', settings.latencyBudgets ?? 'enforce', ['enforce', 'observe'] as const),
  };
}

/** How many steps a seed spends in TRAINING and in BLENDING (its alpha ramp). */
export interface StageLengths {
  readonly trainingSteps: number;
  readonly blendingSteps: number;
}

/**
 * Stage lengths of a seed whose grafted module is `module`: the settings, except for a
 * function-preserving module (its output is 0 at graft, checked by G1), which gets one
 * TRAINING step and no ramp — alpha 1 from BLENDING on. Isolated training and a ramp exist
 * to keep a module that starts with an arbitrary output from shocking the host; a module
 * that starts at 0 would only be held back by them: in TRAINING its output is not seen,
 * so its weights drift along a gradient the loss never answers, and a ramp scales down the
 * gradient the new units learn from (measured: 0.6 points of the gap to the large arm on
 * the narrow Fashion-MNIST MLP).
 */
export function stageLengths(module: SeedModule | undefined, settings: KasminaLifecycleSettings): StageLengths {
  if (module?.functionPreserving === true) return { trainingSteps: 1, blendingSteps: 0 };
  return { trainingSteps: settings.trainingSteps, blendingSteps: settings.blendingSteps };
}

/** What the driver works with. */
export interface SeedDriverOptions {
  readonly host: HostModel;
  readonly registry: ParameterRegistry;
  readonly isolation: IsolationMonitor;
  readonly state: ExecutorState;
  readonly telemetry: ExecutorTelemetry;
  readonly settings: KasminaLifecycleSettings;
  /** Cancelled for seeds torn down while their request is outstanding. */
  readonly prefetch: PrefetchCoordinator | undefined;
  /** Builds the slot a loaded module is grafted in (throws `KASMINA_GRAFT_SHAPE_MISMATCH`). */
  readonly createSlot: (options: SeedSlotOptions) => SeedSlot;
}

const S = SeedLifecycleStage;

/** Drives every seed's lifecycle and gates. */
export class SeedDriver {
  readonly #o: SeedDriverOptions;

  constructor(options: SeedDriverOptions) {
    this.#o = options;
  }

  // ------------------------------------------------------------------ grafting (G1)

  /** Grafts a loaded kernel at the seed's site and moves it to TRAINING (G1), or culls it. */
  graft(seed: Seed, load: KernelLoad): void {
    if (!load.ok) {
      this.#gateG1(seed, { kernelAttached: false, kernelError: load.error });
      return;
    }
    const { module, latencyMs, cacheHit } = load.fetched;
    seed.kernel.latencyMs = latencyMs;
    try {
      this.#o.registry.registerSeed(seed.seedId, module.variables);
    } catch (error) {
      module.dispose();
      if (!isEsperError(error, ErrorCode.KASMINA_REGISTRY_CONFLICT)) throw error;
      this.#gateG1(seed, { kernelAttached: false, registryConflict: error.message });
      return;
    }
    let slot: SeedSlot;
    try {
      if (module.graftInit !== undefined) module.graftInit.apply(this.#graftRng(seed));
      slot = this.#o.createSlot({ seedId: seed.seedId, siteId: seed.siteId, site: seed.site, module, plan: seed.blend.plan });
    } catch (error) {
      this.#o.registry.deregisterSeed(seed.seedId);
      module.dispose();
      if (!isEsperError(error, ErrorCode.KASMINA_GRAFT_SHAPE_MISMATCH)) throw error;
      this.#gateG1(seed, { kernelAttached: false, kernelError: describeError(error) });
      return;
    }
    this.#o.host.attach(seed.siteId, slot);
    seed.kernel.slot = slot;
    seed.kernel.variables = module.variables;
    seed.kernel.parameters = slot.parameterCount;
    seed.events.push({
      description: SeedEvent.KERNEL_ATTACHED,
      attributes: {
        seed_id: seed.seedId,
        blueprint_id: seed.blueprintId,
        site_id: seed.siteId,
        latency_ms: latencyMs.toFixed(3),
        cache: cacheHit ? 'hit' : 'miss',
      },
    });
    const entry = module.functionPreserving === true ? { entryOutputMaxAbs: this.#probe(seed, slot).maxAbs } : {};
    if (this.#gateG1(seed, { kernelAttached: true, ...entry })) {
      this.move(seed, S.SEED_STAGE_TRAINING);
      this.#o.isolation.recordPass(seed.seedId);
    }
  }

  /** The run's stream for what a module draws at graft (set by the executor on every call). */
  #graftRng(seed: Seed): Rng {
    const rng = this.#o.state.rng;
    if (rng === undefined) {
      throw new EsperError(ErrorCode.INVALID_STATE, `seed ${seed.seedId}: grafted outside an executor call (no run stream to draw from)`, {
        details: { seedId: seed.seedId },
      });
    }
    return rng;
  }

  /**
   * Re-attaches a restored seed's freshly fetched module in the phase and at the alpha it
   * had when the checkpoint was written.
   */
  reattach(seed: Seed, fetched: { readonly module: SeedSlotOptions['module'] }, phase: SeedSlotPhase): void {
    this.#o.registry.registerSeed(seed.seedId, fetched.module.variables);
    const slot = this.#o.createSlot({
      seedId: seed.seedId,
      siteId: seed.siteId,
      site: seed.site,
      module: fetched.module,
      plan: seed.blend.plan,
      phase,
      alpha: seed.blend.alpha,
    });
    this.#o.host.attach(seed.siteId, slot);
    seed.kernel.slot = slot;
    seed.kernel.variables = fetched.module.variables;
  }

  #gateG1(
    seed: Seed,
    facts: { kernelAttached: boolean; kernelError?: string; registryConflict?: string; entryOutputMaxAbs?: number },
  ): boolean {
    const g1 = evaluateG1({
      ...facts,
      isolationViolations: seed.isolation.violations,
      trainableParameters: seed.kernel.slot?.parameterCount ?? 0,
    });
    return this.recordGate(seed, seed.seedId, g1);
  }

  // ------------------------------------------------------------------ one step

  /** Advances one seed by the step just taken (`signals` is what it measured). */
  advance(seed: Seed, signals: StepSignals | undefined): void {
    const stage = seed.lifecycle.stage;
    const slot = seed.kernel.slot;
    // A module waiting for its gradient initialisation took the last step inert (all its
    // gradients 0 by construction): it is initialised now and counts from the next step.
    const inert = slot?.module.gradientInit?.pending() === true;
    if (signals !== undefined) {
      if (seed.progress.lossAtGermination === undefined && ACTIVE_STAGES.has(stage)) {
        seed.progress.lossAtGermination = this.#o.state.lossEwma;
      }
      const norm = signals.hookGradientNorms.get(seed.siteId);
      if (norm !== undefined && slot !== undefined && !seed.progress.paused && !inert) recordGradientNorm(seed.gradients, norm);
    }
    if (seed.progress.paused) return;
    if (inert) {
      this.#initFromGradient(seed, signals);
      return;
    }
    const settings = this.#o.settings;
    const lengths = stageLengths(slot?.module, settings);
    switch (stage) {
      case S.SEED_STAGE_GERMINATED: {
        const load = seed.kernel.loaded;
        if (load === undefined) return;
        seed.kernel.loaded = undefined;
        this.graft(seed, load);
        return;
      }
      case S.SEED_STAGE_TRAINING:
        // Grafted by a command applied after this step's update (a per-step decision): the
        // seed took no part in the step, so its first step is the next one.
        if (seed.lifecycle.enteredAtStep === this.#o.state.step) return;
        seed.progress.activeSteps += 1;
        if (!this.#checkIsolationDue(seed, lengths.trainingSteps)) return;
        if (seed.progress.activeSteps >= lengths.trainingSteps && this.recordGate(seed, seed.seedId, this.#stabilityGate(seed, true))) {
          this.move(seed, S.SEED_STAGE_BLENDING);
          this.setPhase(seed, 'blended');
          this.#setAlpha(seed, alphaSchedule(0, lengths.blendingSteps, settings.alphaTemperature));
        }
        return;
      case S.SEED_STAGE_BLENDING:
        seed.progress.activeSteps += 1;
        seed.blend.steps += 1;
        this.#setAlpha(seed, alphaSchedule(seed.blend.steps, lengths.blendingSteps, settings.alphaTemperature));
        if (!this.#checkIsolationDue(seed, Math.max(1, lengths.blendingSteps))) return;
        if (seed.blend.steps >= lengths.blendingSteps && this.recordGate(seed, seed.seedId, this.#interfaceGate(seed))) {
          this.move(seed, S.SEED_STAGE_SHADOWING);
          this.#setAlpha(seed, 1);
        }
        return;
      case S.SEED_STAGE_SHADOWING:
        seed.progress.activeSteps += 1;
        if (seed.progress.activeSteps >= settings.shadowingSteps && this.recordGate(seed, seed.seedId, this.#stabilityGate(seed, false))) {
          this.move(seed, S.SEED_STAGE_PROBATIONARY);
        }
        return;
      case S.SEED_STAGE_PROBATIONARY:
        seed.progress.activeSteps += 1;
        if (seed.progress.activeSteps >= settings.probationSteps && seed.contribution.step >= seed.lifecycle.enteredAtStep) {
          this.decideFossilize(seed);
        }
        return;
      case S.SEED_STAGE_EMBARGOED:
        if (this.#o.state.step >= seed.fate.embargoUntilStep) this.#reset(seed);
        return;
      case S.SEED_STAGE_RESETTING:
        this.#finishReset(seed, false);
        return;
      default:
        return;
    }
  }

  /** Initialises the seed's waiting module from the gradient the trainer served for its site on this step, if it did. */
  #initFromGradient(seed: Seed, signals: StepSignals | undefined): void {
    const init = seed.kernel.slot?.module.gradientInit;
    const gradient = signals?.widenGradients?.get(seed.siteId);
    if (init === undefined || gradient === undefined) return;
    init.apply(gradient.matrix, gradient.inputs, gradient.outputs);
    seed.events.push({
      description: SeedEvent.GRADIENT_INIT,
      attributes: {
        seed_id: seed.seedId,
        site_id: seed.siteId,
        step: this.#o.state.step,
        gradient_norm: Math.sqrt(gradient.matrix.reduce((sum, v) => sum + v * v, 0)).toExponential(3),
      },
    });
  }

  /** A probe of the seed's module, seeded by the step (the run's random stream is not touched). */
  #probe(seed: Seed, slot: SeedSlot): ReturnType<SeedSlot['probe']> {
    return slot.probe(seededRng(this.#o.state.step * 7919 + seed.lifecycle.stage));
  }

  /** G2: kernel latency, the module's output on a probe, the reported gradients, and (SHADOWING) the loss. */
  #stabilityGate(seed: Seed, training: boolean): GateResult {
    const slot = seed.kernel.slot;
    const lossNow = this.#o.state.lossEwma;
    const lossBaseline = seed.progress.lossAtGermination;
    return evaluateG2({
      kernelLatencyMs: seed.kernel.latencyMs,
      latencyBudgetMs: this.#o.settings.kernelLatencyBudgetMs,
      enforceLatency: this.#o.settings.latencyBudgets !== 'observe',
      seedOutputFinite: slot !== undefined && this.#probe(seed, slot).finite,
      seedGradFinite: seed.gradients.finite,
      seedGradNormMean: meanGradientNorm(seed.gradients),
      requireActiveGradient: training,
      maxLossRegression: G2_MAX_LOSS_REGRESSION,
      ...(training || lossBaseline === undefined || lossNow === undefined ? {} : { lossBaseline, lossNow }),
    });
  }

  /** G3: every host variable host-owned in the registry, and the module's output of the site's output shape. */
  #interfaceGate(seed: Seed): GateResult {
    const registry = this.#o.registry;
    const slot = seed.kernel.slot;
    const probe = slot === undefined ? undefined : this.#probe(seed, slot);
    return evaluateG3({
      unregisteredHostVariables: this.#o.host.variables.filter((v) => registry.ownerOf(v)?.kind !== 'host').length,
      expectedShape: probe?.expectedShape ?? [PROBE_BATCH, ...siteOutputShape(seed.site)],
      outputShape: probe?.outputShape ?? [],
    });
  }

  /**
   * Runs the direct isolation check when due — every `isolationCheckEverySteps` active steps
   * of the stage and at its last step (`stageSteps`), so that no seed leaves TRAINING or
   * BLENDING unchecked however short the stage. False when it failed (G1 fails and the
   * seed is culled).
   */
  #checkIsolationDue(seed: Seed, stageSteps: number): boolean {
    const slot = seed.kernel.slot;
    const steps = seed.progress.activeSteps;
    if (slot === undefined) return true;
    if (steps % this.#o.settings.isolationCheckEverySteps !== 0 && steps < stageSteps) return true;
    this.#o.state.counters.isolationChecks += 1;
    const check = checkIsolation(slot, seededRng(this.#o.state.step * 7919 + seed.progress.activeSteps));
    seed.isolation.lastLeak = check.relativeLeak;
    if (check.passed) {
      this.#o.isolation.recordPass(seed.seedId);
      return true;
    }
    this.#recordViolation(seed, `seed path leaks gradient into the host (relative ${check.relativeLeak.toExponential(2)})`);
    return this.#gateG1(seed, { kernelAttached: true });
  }

  #recordViolation(seed: Seed, reason: string): void {
    seed.isolation.violations += 1;
    const result = this.#o.isolation.recordViolation(seed.seedId, reason);
    seed.events.push({
      description: SeedEvent.ISOLATION_VIOLATION,
      level: result.escalate ? TelemetryLevel.CRITICAL : TelemetryLevel.WARNING,
      attributes: {
        seed_id: seed.seedId,
        reason,
        seed_violations: result.seedViolations,
        total_violations: result.totalViolations,
        breaker_open: result.breakerOpen,
      },
    });
  }

  // ------------------------------------------------------------------ decisions

  /** G4 on the contribution measured in PROBATIONARY: FOSSILIZED when it passes, else culled. */
  decideFossilize(seed: Seed): void {
    const measured = seed.contribution.step >= seed.lifecycle.enteredAtStep ? seed.contribution.value : undefined;
    const g4 = evaluateG4({
      ...(measured === undefined ? {} : { contribution: measured }),
      minContribution: this.#o.settings.minContribution,
      paused: seed.progress.paused,
    });
    if (!this.recordGate(seed, seed.seedId, g4)) return;
    this.move(seed, S.SEED_STAGE_FOSSILIZED);
    // Part of the host from now on: the layers before the site train through it again.
    this.setPhase(seed, 'fused');
    this.#o.state.counters.seedsFossilized += 1;
    seed.events.push({
      description: SeedEvent.SEED_FOSSILIZED,
      attributes: { seed_id: seed.seedId, blueprint_id: seed.blueprintId, site_id: seed.siteId, contribution: (measured ?? 0).toFixed(4) },
    });
  }

  /**
   * Removes an active seed from the host and frees it: CULLED, then EMBARGOED (the site
   * stays closed `embargoSteps`), reset to DORMANT by `advance` once the embargo is over.
   */
  cull(seed: Seed, reason: string): void {
    if (!ACTIVE_STAGES.has(seed.lifecycle.stage)) return;
    const state = this.#o.state;
    this.move(seed, S.SEED_STAGE_CULLED);
    seed.fate.cullReason = reason;
    state.counters.seedsCulled += 1;
    this.#teardown(seed);
    seed.events.push({
      description: SeedEvent.SEED_CULLED,
      level: TelemetryLevel.WARNING,
      attributes: { seed_id: seed.seedId, blueprint_id: seed.blueprintId, site_id: seed.siteId, reason },
    });
    seed.fate.embargoUntilStep = state.step + this.#o.settings.embargoSteps;
    state.embargo.set(seed.siteId, seed.fate.embargoUntilStep);
    this.move(seed, S.SEED_STAGE_EMBARGOED);
    if (this.#o.settings.embargoSteps === 0) this.#reset(seed);
  }

  /** Culls every active seed. */
  cullAll(reason: string): void {
    for (const seed of this.#o.state.live()) this.cull(seed, reason);
  }

  /** FOSSILIZED or DORMANT → TERMINATED; the seed is retired after its packet. */
  terminate(seed: Seed, reason: string): void {
    this.move(seed, S.SEED_STAGE_TERMINATED);
    seed.events.push({ description: SeedEvent.SEED_TERMINATED, attributes: { seed_id: seed.seedId, reason } });
    seed.fate.retire = true;
  }

  #teardown(seed: Seed): void {
    const kernel = seed.kernel;
    if (kernel.prefetch !== undefined) {
      this.#o.prefetch?.cancel(kernel.prefetch.requestId);
      kernel.prefetch = undefined;
    }
    if (kernel.loaded?.ok === true) kernel.loaded.fetched.module.dispose();
    kernel.loaded = undefined;
    if (kernel.slot !== undefined) {
      if (this.#o.host.hooks.get(seed.siteId) === kernel.slot) this.#o.host.detach(seed.siteId);
      kernel.slot.dispose();
      kernel.slot = undefined;
    }
    this.#o.registry.deregisterSeed(seed.seedId);
    seed.blend.alpha = 0;
  }

  /** EMBARGOED → RESETTING → (G5) → DORMANT. */
  #reset(seed: Seed): void {
    this.move(seed, S.SEED_STAGE_RESETTING);
    this.#finishReset(seed, true);
  }

  /**
   * G5 on what is left of the seed at its site, in the registry and in flight. Clean: the
   * seed is DORMANT, its site free, and it retires. Not clean: it stays RESETTING and every
   * step re-checks (the failure is reported once, at ERROR: something leaked).
   */
  #finishReset(seed: Seed, first: boolean): void {
    const { host, registry } = this.#o;
    const kernel = seed.kernel;
    const g5 = evaluateG5({
      kernelAttached: host.hooks.has(seed.siteId),
      liveTensors: kernel.variables.filter((v) => !v.isDisposed).length,
      registryEntries: registry.seedIds().includes(seed.seedId) ? 1 : 0,
      inflightPrefetches: (kernel.prefetch === undefined ? 0 : 1) + (kernel.fetching ? 1 : 0),
    });
    if (!g5.passed) {
      if (first) this.recordGate(seed, seed.seedId, g5, false);
      return;
    }
    this.recordGate(seed, seed.seedId, g5, false);
    this.move(seed, S.SEED_STAGE_DORMANT);
    this.#o.state.occupancy.delete(seed.siteId);
    this.#o.state.embargo.delete(seed.siteId);
    this.#o.isolation.clearSeed(seed.seedId);
    seed.events.push({ description: SeedEvent.SEED_RESET, attributes: { seed_id: seed.seedId, site_id: seed.siteId } });
    seed.fate.retire = true;
  }

  // ------------------------------------------------------------------ pause

  /** Freezes the seed's timers and takes its output off the site. */
  pause(seed: Seed): void {
    seed.progress.paused = true;
    this.setPhase(seed, 'paused');
  }

  /** Undoes {@link pause}: the slot goes back to the phase of the seed's stage. */
  resume(seed: Seed): void {
    seed.progress.paused = false;
    this.setPhase(seed, seed.lifecycle.stage === S.SEED_STAGE_TRAINING ? 'isolated' : 'blended');
  }

  // ------------------------------------------------------------------ moves and gates

  /** Sets the slot's phase (when the seed has a slot). */
  setPhase(seed: Seed, phase: SeedSlotPhase): void {
    if (seed.kernel.slot !== undefined) seed.kernel.slot.phase = phase;
  }

  #setAlpha(seed: Seed, alpha: number): void {
    seed.blend.alpha = alpha;
    if (seed.kernel.slot !== undefined) seed.kernel.slot.alpha = alpha;
  }

  /** A legal move (every caller checked it); records it on the seed. */
  move(seed: Seed, to: SeedLifecycleStage): void {
    const from = seed.lifecycle.stage;
    const step = this.#o.state.step;
    seed.lifecycle.transition(to, step);
    seed.progress.activeSteps = 0;
    seed.events.push({
      description: SeedEvent.STAGE_TRANSITION,
      attributes: { seed_id: seed.seedId, from: stageName(from), to: stageName(to), step },
    });
  }

  /** Throws `KASMINA_ILLEGAL_TRANSITION` (with an `illegal_transition` event) when a command asks for an illegal move. */
  requireTransition(seed: Seed, to: SeedLifecycleStage): void {
    const from = seed.lifecycle.stage;
    if (isTransitionAllowed(from, to)) return;
    this.#o.state.counters.illegalTransitions += 1;
    const move = { seed_id: seed.seedId, from: stageName(from), to: stageName(to) };
    seed.events.push({ description: SeedEvent.ILLEGAL_TRANSITION, level: TelemetryLevel.ERROR, attributes: move });
    throw new EsperError(ErrorCode.KASMINA_ILLEGAL_TRANSITION, `seed ${seed.seedId}: ${move.from} -> ${move.to} is not allowed`, {
      details: { ...move, reason: `illegal transition ${move.from} -> ${move.to}` },
    });
  }

  /**
   * Records a gate result: a `gate_event`, and on failure a `gate_failure` (WARNING: a
   * quality gate did its job; ERROR for G5: an unclean reset is a leak) and, when
   * `cullOnFailure` and there is a seed, the cull. Returns whether it passed.
   */
  recordGate(seed: Seed | undefined, seedId: string, result: GateResult, cullOnFailure = true): boolean {
    const push = (event: Parameters<ExecutorTelemetry['global']>[0]): void => {
      if (seed === undefined) this.#o.telemetry.global(event);
      else seed.events.push(event);
    };
    const gate = gateName(result.gate);
    push({
      description: SeedEvent.GATE_EVENT,
      level: result.passed ? TelemetryLevel.INFO : TelemetryLevel.WARNING,
      attributes: {
        ...result.attributes,
        seed_id: seedId,
        gate,
        passed: result.passed,
        ...(result.reason === '' ? {} : { reason: result.reason }),
      },
    });
    if (result.passed) return true;
    this.#o.state.counters.gateFailures += 1;
    push({
      description: SeedEvent.GATE_FAILURE,
      level: result.gate === SeedLifecycleGate.SEED_GATE_G5_RESET ? TelemetryLevel.ERROR : TelemetryLevel.WARNING,
      attributes: { seed_id: seedId, gate, reason: result.reason },
    });
    if (seed !== undefined && cullOnFailure) this.cull(seed, `${gate}: ${result.reason}`);
    return false;
  }
}
