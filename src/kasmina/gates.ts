/**
 * The lifecycle gates G0–G5: pure evaluators, one per gate. Each takes the facts the seed
 * driver measured and returns a {@link GateResult}; the first failing check wins. Gates
 * neither throw nor emit telemetry. Which gate guards which move, and what each measures:
 * docs/architecture.md (Kasmina, lifecycle table). Non-finite measurements fail the check
 * they feed, never pass it.
 */
import { SeedLifecycleGate, SeedLifecycleStage } from '../leyline/index.js';

/** Attribute value of a gate result: finite numbers, strings and booleans only. */
export type GateAttributeValue = string | number | boolean;

/** The verdict of one gate. */
export interface GateResult {
  readonly gate: SeedLifecycleGate;
  readonly passed: boolean;
  /** Why it failed; '' on pass. */
  readonly reason: string;
  /** Facts behind the verdict, for telemetry; every number finite. */
  readonly attributes: Readonly<Record<string, GateAttributeValue>>;
}

/** Smallest counterfactual contribution (accuracy points, 0.01 = 1 %) that G4 fossilizes. */
export const G4_MIN_CONTRIBUTION = 0.01;

/** Largest relative rise of the training-loss EWMA over its value at germination that G2 tolerates in SHADOWING (0.10 = 10 %). */
export const G2_MAX_LOSS_REGRESSION = 0.1;

const G = SeedLifecycleGate;
const S = SeedLifecycleStage;

/** The gate guarding `from → to`, or undefined when the move is ungated (culls, embargo, ...). */
export function gateForTransition(from: SeedLifecycleStage, to: SeedLifecycleStage): SeedLifecycleGate | undefined {
  if (from === S.SEED_STAGE_DORMANT && to === S.SEED_STAGE_GERMINATED) return G.SEED_GATE_G0_SANITY;
  if (from === S.SEED_STAGE_GERMINATED && to === S.SEED_STAGE_TRAINING) return G.SEED_GATE_G1_GRADIENT_HEALTH;
  if (from === S.SEED_STAGE_TRAINING && to === S.SEED_STAGE_BLENDING) return G.SEED_GATE_G2_STABILITY;
  if (from === S.SEED_STAGE_SHADOWING && to === S.SEED_STAGE_PROBATIONARY) return G.SEED_GATE_G2_STABILITY;
  if (from === S.SEED_STAGE_BLENDING && to === S.SEED_STAGE_SHADOWING) return G.SEED_GATE_G3_INTERFACE;
  if (from === S.SEED_STAGE_PROBATIONARY && to === S.SEED_STAGE_FOSSILIZED) return G.SEED_GATE_G4_SYSTEM_IMPACT;
  if (from === S.SEED_STAGE_RESETTING && to === S.SEED_STAGE_DORMANT) return G.SEED_GATE_G5_RESET;
  return undefined;
}

// --- G0 --------------------------------------------------------------------------------

/**
 * Facts for G0_SANITY (DORMANT → GERMINATED). Ids and the blueprint's presence in the
 * catalog are the dependency guard's, checked before the command is dispatched.
 */
export interface SanityGateInputs {
  readonly blueprintId: string;
  readonly siteId: string;
  /** The host has a site with this id. */
  readonly siteExists: boolean;
  /** A live seed already carries this seed id. */
  readonly seedIdInUse: boolean;
  /** Another seed is grafted at the site. */
  readonly siteOccupied: boolean;
  /** The site is under an embargo after a cull. */
  readonly siteEmbargoed: boolean;
  /** The blueprint's family can grow at the site. */
  readonly blueprintFitsSite: boolean;
  /** Why the command's blend config was rejected, if it was. */
  readonly blendConfigError?: string;
}

/** G0: site known, seed id free, site free and not embargoed, blueprint fits, blend config valid. */
export function evaluateG0(inputs: SanityGateInputs): GateResult {
  const attributes = { blueprint_id: inputs.blueprintId, site_id: inputs.siteId };
  const fail = (reason: string, extra: Record<string, GateAttributeValue> = {}): GateResult =>
    result(G.SEED_GATE_G0_SANITY, reason, { ...attributes, ...extra });
  if (!inputs.siteExists) return fail('unknown site');
  if (inputs.seedIdInUse) return fail('seed id in use');
  if (inputs.siteOccupied) return fail('site occupied');
  if (inputs.siteEmbargoed) return fail('site embargoed');
  if (!inputs.blueprintFitsSite) return fail('blueprint does not fit site');
  const blendError = inputs.blendConfigError ?? '';
  if (blendError.length > 0) return fail(`invalid blend config: ${blendError}`, { blend_config_error: blendError });
  return result(G.SEED_GATE_G0_SANITY, '', attributes);
}

// --- G1 --------------------------------------------------------------------------------

/** Facts for G1_GRADIENT_HEALTH (GERMINATED → TRAINING; then at every isolation check). */
export interface GradientHealthGateInputs {
  /** The seed module was built and grafted at its site. */
  readonly kernelAttached: boolean;
  /** Why it was not (fetch error code, open breaker, shape mismatch, ...). */
  readonly kernelError?: string;
  /** Why the parameter registry refused the seed's variables, if it did. */
  readonly registryConflict?: string;
  /** Isolation violations measured for the seed (gradient leaking into the host). */
  readonly isolationViolations: number;
  /** Trainable parameter count (reported only: a parameter-free seed may still train). */
  readonly trainableParameters: number;
  /**
   * For a module that claims a function-preserving entry, the largest absolute output on a
   * probe at graft: anything but exactly 0 (NaN included) fails the gate, since such a seed
   * skips the alpha ramp.
   */
  readonly entryOutputMaxAbs?: number;
}

/** G1: no registry conflict, kernel attached, no isolation violations, a function-preserving entry that is one. */
export function evaluateG1(inputs: GradientHealthGateInputs): GateResult {
  const attributes: Record<string, GateAttributeValue> = {
    kernel_attached: inputs.kernelAttached,
    violations: finiteOrText(inputs.isolationViolations),
    trainable_parameters: finiteOrText(inputs.trainableParameters),
  };
  const kernelError = inputs.kernelError ?? '';
  if (kernelError.length > 0) attributes['kernel_error'] = kernelError;
  const conflict = inputs.registryConflict ?? '';
  if (conflict.length > 0) attributes['registry_conflict'] = conflict;
  const fail = (reason: string): GateResult => result(G.SEED_GATE_G1_GRADIENT_HEALTH, reason, attributes);
  if (conflict.length > 0) return fail(`parameter registry conflict: ${conflict}`);
  if (!inputs.kernelAttached) return fail('kernel not attached');
  if (hasViolations(inputs.isolationViolations)) return fail('gradient isolation violations present');
  if (inputs.entryOutputMaxAbs !== undefined) {
    attributes['entry_output_max_abs'] = finiteOrText(inputs.entryOutputMaxAbs);
    if (inputs.entryOutputMaxAbs !== 0) return fail('function-preserving module has a non-zero output at graft');
  }
  return result(G.SEED_GATE_G1_GRADIENT_HEALTH, '', attributes);
}

// --- G2 --------------------------------------------------------------------------------

/** Facts for G2_STABILITY (TRAINING → BLENDING; SHADOWING → PROBATIONARY). */
export interface StabilityGateInputs {
  /** Latency of the fetch that loaded the seed's kernel (lock wait + load + rebuild), in ms. */
  readonly kernelLatencyMs: number;
  readonly latencyBudgetMs: number;
  /** Whether a latency over budget fails the gate (`core.latencyBudgets: enforce`); else it is only reported. */
  readonly enforceLatency: boolean;
  /** The seed module's output on a probe batch of the site's input shape was finite. */
  readonly seedOutputFinite: boolean;
  /** Every seed gradient norm the steps reported in the stage was finite. */
  readonly seedGradFinite: boolean;
  /** Mean seed gradient norm over the stage. */
  readonly seedGradNormMean: number;
  /** Fail when the seed never received a gradient (TRAINING only). */
  readonly requireActiveGradient: boolean;
  /** Loss when the seed was germinated; the loss check runs only with both losses given. */
  readonly lossBaseline?: number;
  readonly lossNow?: number;
  /** Largest tolerated relative loss increase, e.g. {@link G2_MAX_LOSS_REGRESSION}. */
  readonly maxLossRegression: number;
}

/** G2: within latency budget, finite output and gradient, learning, not regressing the loss. */
export function evaluateG2(inputs: StabilityGateInputs): GateResult {
  const attributes: Record<string, GateAttributeValue> = {
    latency_ms: finiteOrText(inputs.kernelLatencyMs),
    budget_ms: finiteOrText(inputs.latencyBudgetMs),
    seed_output_finite: inputs.seedOutputFinite,
    seed_grad_norm_mean: finiteOrText(inputs.seedGradNormMean),
  };
  const lossChecked = inputs.lossBaseline !== undefined && inputs.lossNow !== undefined;
  let lossLimit = Number.NaN;
  if (lossChecked) {
    lossLimit = (inputs.lossBaseline as number) * (1 + inputs.maxLossRegression);
    attributes['loss_baseline'] = finiteOrText(inputs.lossBaseline as number);
    attributes['loss_now'] = finiteOrText(inputs.lossNow as number);
    attributes['loss_limit'] = finiteOrText(lossLimit);
  }
  const fail = (reason: string): GateResult => result(G.SEED_GATE_G2_STABILITY, reason, attributes);
  // `!(a <= b)` rather than `a > b`: a NaN measurement fails.
  if (inputs.enforceLatency && !(inputs.kernelLatencyMs <= inputs.latencyBudgetMs)) return fail('latency budget exceeded');
  if (!inputs.seedOutputFinite) return fail('non-finite seed output');
  if (!inputs.seedGradFinite) return fail('non-finite seed gradient');
  if (inputs.requireActiveGradient && !(inputs.seedGradNormMean > 0)) return fail('seed gradient inactive');
  if (lossChecked && !((inputs.lossNow as number) <= lossLimit)) return fail('loss regressed');
  return result(G.SEED_GATE_G2_STABILITY, '', attributes);
}

// --- G3 --------------------------------------------------------------------------------

/** Facts for G3_INTERFACE (BLENDING → SHADOWING, once the alpha ramp has reached 1). */
export interface InterfaceGateInputs {
  /** Host variables the parameter registry does not hold as host-owned. */
  readonly unregisteredHostVariables: number;
  /**
   * Shape the module must return for the probe batch: the site's output shape (its
   * activation shape, or a WIDEN site's `output_shape`) with a batch axis.
   */
  readonly expectedShape: readonly number[];
  /** Shape the seed module returned for it. */
  readonly outputShape: readonly number[];
}

/** G3: every host variable host-owned, the seed's output of the site's output shape. */
export function evaluateG3(inputs: InterfaceGateInputs): GateResult {
  const attributes: Record<string, GateAttributeValue> = {
    unregistered_host_variables: finiteOrText(inputs.unregisteredHostVariables),
    expected_shape: `[${inputs.expectedShape.join(',')}]`,
    output_shape: `[${inputs.outputShape.join(',')}]`,
  };
  const fail = (reason: string): GateResult => result(G.SEED_GATE_G3_INTERFACE, reason, attributes);
  if (!(inputs.unregisteredHostVariables <= 0)) return fail('host model not registered');
  const shapeMatches =
    inputs.outputShape.length === inputs.expectedShape.length && inputs.outputShape.every((d, i) => d === inputs.expectedShape[i]);
  if (!shapeMatches) return fail('seed output shape mismatch');
  return result(G.SEED_GATE_G3_INTERFACE, '', attributes);
}

// --- G4 --------------------------------------------------------------------------------

/** Facts for G4_SYSTEM_IMPACT (PROBATIONARY → FOSSILIZED). */
export interface SystemImpactGateInputs {
  /**
   * Counterfactual contribution measured in PROBATIONARY: validation accuracy with the seed
   * minus with its site bypassed (fractions, 0.01 = 1 point). Undefined when not measured.
   */
  readonly contribution?: number;
  /** Smallest contribution that fossilizes; {@link G4_MIN_CONTRIBUTION} by default. */
  readonly minContribution: number;
  /** The seed is paused (its contribution is not live). */
  readonly paused: boolean;
}

/** G4: contribution measured, seed live, contribution ≥ threshold. */
export function evaluateG4(inputs: SystemImpactGateInputs): GateResult {
  const attributes: Record<string, GateAttributeValue> = {
    threshold: finiteOrText(inputs.minContribution),
    paused: inputs.paused,
  };
  const contribution = inputs.contribution;
  if (contribution !== undefined) attributes['contribution'] = finiteOrText(contribution);
  const fail = (reason: string): GateResult => result(G.SEED_GATE_G4_SYSTEM_IMPACT, reason, attributes);
  if (contribution === undefined || !Number.isFinite(contribution)) return fail('contribution not measured');
  if (inputs.paused) return fail('seed paused');
  if (!(contribution >= inputs.minContribution)) return fail('contribution below threshold');
  return result(G.SEED_GATE_G4_SYSTEM_IMPACT, '', attributes);
}

// --- G5 --------------------------------------------------------------------------------

/** Facts for G5_RESET (RESETTING → DORMANT), measured on the host, the registry and the loads. */
export interface ResetGateInputs {
  /** The host still holds the seed's hook at its site. */
  readonly kernelAttached: boolean;
  /** Variables of the seed's module not yet disposed. */
  readonly liveTensors: number;
  /** Parameter-registry entries still owned by the seed. */
  readonly registryEntries: number;
  /** Kernel prefetches or loads still outstanding for the seed. */
  readonly inflightPrefetches: number;
}

/** G5: nothing of the seed is left (hook, tensors, registry entries, prefetches and loads). */
export function evaluateG5(inputs: ResetGateInputs): GateResult {
  const attributes: Record<string, GateAttributeValue> = {
    kernel_attached: inputs.kernelAttached,
    live_tensors: finiteOrText(inputs.liveTensors),
    registry_entries: finiteOrText(inputs.registryEntries),
    inflight_prefetches: finiteOrText(inputs.inflightPrefetches),
  };
  const dirty: string[] = [];
  if (inputs.kernelAttached) dirty.push('kernel_attached');
  if (!(inputs.liveTensors <= 0)) dirty.push('live_tensors');
  if (!(inputs.registryEntries <= 0)) dirty.push('registry_entries');
  if (!(inputs.inflightPrefetches <= 0)) dirty.push('inflight_prefetches');
  if (dirty.length > 0) return result(G.SEED_GATE_G5_RESET, 'reset state not clean', { ...attributes, dirty: dirty.join(',') });
  return result(G.SEED_GATE_G5_RESET, '', attributes);
}

// --- helpers ---------------------------------------------------------------------------

/** Counts as violated unless the count is a number ≤ 0 (NaN counts as violated). */
function hasViolations(count: number): boolean {
  return !(count <= 0);
}

/** Keeps attribute values finite: non-finite numbers become their text ('NaN', 'Infinity'). */
function finiteOrText(value: number): GateAttributeValue {
  return Number.isFinite(value) ? value : String(value);
}

function result(gate: SeedLifecycleGate, reason: string, attributes: Record<string, GateAttributeValue>): GateResult {
  return Object.freeze({ gate, passed: reason.length === 0, reason, attributes: Object.freeze({ ...attributes }) });
}
