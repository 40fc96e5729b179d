/**
 * The lifecycle gates G0–G5: pure evaluators, one per gate. Each takes a record of facts the
 * executor gathered and returns a {@link GateResult}; the first failing check wins. Gates
 * neither throw nor emit telemetry.
 *
 * Gate ↔ transition mapping (ours; see {@link gateForTransition}):
 * - G0_SANITY          DORMANT → GERMINATED
 * - G1_GRADIENT_HEALTH GERMINATED → TRAINING
 * - G2_STABILITY       TRAINING → BLENDING, and again SHADOWING → PROBATIONARY at full alpha
 * - G3_INTERFACE       BLENDING → SHADOWING
 * - G4_SYSTEM_IMPACT   PROBATIONARY → FOSSILIZED (fossilize vs cull)
 * - G5_RESET           RESETTING → DORMANT
 *
 * Deviations from the prototype (reference prototype-kasmina §5.2):
 * - G0 checks the site (known, free, not embargoed, fitting) and the blend config; the
 *   prototype only checked ids and parameters, and never enforced the embargo (§17.2).
 * - G2 judges gradients, outputs and loss, not only kernel latency.
 * - G3 requires alpha at its target (the 2026 anchor's G3, alpha ≥ 0.95).
 * - G4 is a counterfactual-contribution test (anchor §1, "G5 ≥ 1%") instead of a
 *   performance-status string check.
 * - G5 names what is dirty instead of a bare "not clean".
 * - Non-finite measurements fail the check they feed (latency, loss), never pass it.
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

/** Alpha a seed must reach in BLENDING before G3 lets it shadow (2026 anchor §1). */
export const G3_ALPHA_TARGET = 0.95;

/** Smallest counterfactual contribution (accuracy points, 0.01 = 1 %) that G4 fossilizes. */
export const G4_MIN_CONTRIBUTION = 0.01;

/** Largest relative loss increase G2 tolerates over the baseline (0.10 = 10 %). */
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

/** Facts for G0_SANITY (DORMANT → GERMINATED). */
export interface SanityGateInputs {
  readonly blueprintId: string;
  /** The blueprint is in the catalog. */
  readonly blueprintKnown: boolean;
  readonly siteId: string;
  /** The host has a site with this id. */
  readonly siteExists: boolean;
  /** Another seed is grafted at the site. */
  readonly siteOccupied: boolean;
  /** The site is under an embargo after a cull. */
  readonly siteEmbargoed: boolean;
  /** The blueprint's family can grow at the site. */
  readonly blueprintFitsSite: boolean;
  /** Why the command's blend config was rejected, if it was. */
  readonly blendConfigError?: string;
}

/** G0: ids present, blueprint and site known, site free and not embargoed, blend config valid. */
export function evaluateG0(inputs: SanityGateInputs): GateResult {
  const blueprintId = inputs.blueprintId.trim();
  const siteId = inputs.siteId.trim();
  const attributes = { blueprint_id: blueprintId, site_id: siteId };
  const fail = (reason: string, extra: Record<string, GateAttributeValue> = {}): GateResult =>
    result(G.SEED_GATE_G0_SANITY, reason, { ...attributes, ...extra });
  if (blueprintId.length === 0) return fail('missing blueprint id');
  if (!inputs.blueprintKnown) return fail('unknown blueprint');
  if (siteId.length === 0) return fail('missing site id');
  if (!inputs.siteExists) return fail('unknown site');
  if (inputs.siteOccupied) return fail('site occupied');
  if (inputs.siteEmbargoed) return fail('site embargoed');
  if (!inputs.blueprintFitsSite) return fail('blueprint does not fit site');
  const blendError = inputs.blendConfigError ?? '';
  if (blendError.length > 0) return fail(`invalid blend config: ${blendError}`, { blend_config_error: blendError });
  return result(G.SEED_GATE_G0_SANITY, '', attributes);
}

// --- G1 --------------------------------------------------------------------------------

/** Facts for G1_GRADIENT_HEALTH (GERMINATED → TRAINING). */
export interface GradientHealthGateInputs {
  /** The seed module is built and grafted at its site. */
  readonly kernelAttached: boolean;
  /** Isolation violations recorded for the seed. */
  readonly isolationViolations: number;
  /** Why the parameter registry refused the seed's variables, if it did. */
  readonly registryConflict?: string;
  /** Trainable parameter count (reported only: a parameter-free seed may still train). */
  readonly trainableParameters: number;
}

/** G1: kernel attached, no registry conflict, no isolation violations. */
export function evaluateG1(inputs: GradientHealthGateInputs): GateResult {
  const attributes: Record<string, GateAttributeValue> = {
    kernel_attached: inputs.kernelAttached,
    violations: finiteOrText(inputs.isolationViolations),
    trainable_parameters: finiteOrText(inputs.trainableParameters),
  };
  const conflict = inputs.registryConflict ?? '';
  if (!inputs.kernelAttached) return result(G.SEED_GATE_G1_GRADIENT_HEALTH, 'kernel not attached', attributes);
  if (conflict.length > 0) {
    return result(G.SEED_GATE_G1_GRADIENT_HEALTH, `parameter registry conflict: ${conflict}`, {
      ...attributes,
      registry_conflict: conflict,
    });
  }
  if (hasViolations(inputs.isolationViolations)) return result(G.SEED_GATE_G1_GRADIENT_HEALTH, VIOLATIONS, attributes);
  return result(G.SEED_GATE_G1_GRADIENT_HEALTH, '', attributes);
}

// --- G2 --------------------------------------------------------------------------------

/** Facts for G2_STABILITY (TRAINING → BLENDING; SHADOWING → PROBATIONARY). */
export interface StabilityGateInputs {
  /** Measured seed forward latency, in milliseconds. */
  readonly kernelLatencyMs: number;
  readonly latencyBudgetMs: number;
  readonly isolationViolations: number;
  /** Mean seed gradient norm over the stage. */
  readonly seedGradNormMean: number;
  /** Every seed gradient seen in the stage was finite. */
  readonly seedGradFinite: boolean;
  /** Every seed output seen in the stage was finite. */
  readonly seedOutputFinite: boolean;
  /** Fail when the seed never received a gradient (TRAINING only; alpha is 1 later). */
  readonly requireActiveGradient: boolean;
  /** Loss when the stage began; the loss check runs only with both losses given. */
  readonly lossBaseline?: number;
  readonly lossNow?: number;
  /** Largest tolerated relative loss increase, e.g. 0.10. */
  readonly maxLossRegression: number;
}

/** G2: within latency budget, isolated, finite, learning, not regressing the loss. */
export function evaluateG2(inputs: StabilityGateInputs): GateResult {
  const attributes: Record<string, GateAttributeValue> = {
    latency_ms: finiteOrText(inputs.kernelLatencyMs),
    budget_ms: finiteOrText(inputs.latencyBudgetMs),
    violations: finiteOrText(inputs.isolationViolations),
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
  if (!(inputs.kernelLatencyMs <= inputs.latencyBudgetMs)) return fail('latency budget exceeded');
  if (hasViolations(inputs.isolationViolations)) return fail(VIOLATIONS);
  if (!inputs.seedGradFinite) return fail('non-finite seed gradient');
  if (!inputs.seedOutputFinite) return fail('non-finite seed output');
  if (inputs.requireActiveGradient && inputs.seedGradNormMean === 0) return fail('seed gradient inactive');
  if (lossChecked && !((inputs.lossNow as number) <= lossLimit)) return fail('loss regressed');
  return result(G.SEED_GATE_G2_STABILITY, '', attributes);
}

// --- G3 --------------------------------------------------------------------------------

/** Facts for G3_INTERFACE (BLENDING → SHADOWING). */
export interface InterfaceGateInputs {
  /** Current blend alpha. */
  readonly alpha: number;
  /** Alpha the blend must reach; {@link G3_ALPHA_TARGET} by default. */
  readonly alphaTarget: number;
  /** The seed's output shape equals the site's activation shape. */
  readonly outputShapeMatches: boolean;
  /** A host model with variables is registered with the executor. */
  readonly hostRegistered: boolean;
  readonly isolationViolations: number;
}

/** G3: host registered, interface intact, alpha at target, no isolation violations. */
export function evaluateG3(inputs: InterfaceGateInputs): GateResult {
  const attributes: Record<string, GateAttributeValue> = {
    alpha: finiteOrText(inputs.alpha),
    alpha_target: finiteOrText(inputs.alphaTarget),
    output_shape_matches: inputs.outputShapeMatches,
    host_registered: inputs.hostRegistered,
    violations: finiteOrText(inputs.isolationViolations),
  };
  const fail = (reason: string): GateResult => result(G.SEED_GATE_G3_INTERFACE, reason, attributes);
  if (!inputs.hostRegistered) return fail('host model not registered');
  if (!inputs.outputShapeMatches) return fail('interface checks failed');
  if (!(inputs.alpha >= inputs.alphaTarget)) return fail('alpha below target');
  if (hasViolations(inputs.isolationViolations)) return fail(VIOLATIONS);
  return result(G.SEED_GATE_G3_INTERFACE, '', attributes);
}

// --- G4 --------------------------------------------------------------------------------

/** Facts for G4_SYSTEM_IMPACT (PROBATIONARY → FOSSILIZED). */
export interface SystemImpactGateInputs {
  /**
   * Counterfactual contribution: validation accuracy with the seed minus with its alpha
   * forced to 0 (fractions, 0.01 = 1 point). Undefined when not measured.
   */
  readonly contribution?: number;
  /** Smallest contribution that fossilizes; {@link G4_MIN_CONTRIBUTION} by default. */
  readonly minContribution: number;
  readonly isolationViolations: number;
  /** The seed is paused (its contribution is not live). */
  readonly paused: boolean;
}

/** G4: contribution measured, seed live, isolated, contribution ≥ threshold. */
export function evaluateG4(inputs: SystemImpactGateInputs): GateResult {
  const attributes: Record<string, GateAttributeValue> = {
    threshold: finiteOrText(inputs.minContribution),
    violations: finiteOrText(inputs.isolationViolations),
    paused: inputs.paused,
  };
  const contribution = inputs.contribution;
  if (contribution !== undefined) attributes['contribution'] = finiteOrText(contribution);
  const fail = (reason: string): GateResult => result(G.SEED_GATE_G4_SYSTEM_IMPACT, reason, attributes);
  if (contribution === undefined || !Number.isFinite(contribution)) return fail('contribution not measured');
  if (inputs.paused) return fail('seed paused');
  if (hasViolations(inputs.isolationViolations)) return fail(VIOLATIONS);
  if (!(contribution >= inputs.minContribution)) return fail('contribution below threshold');
  return result(G.SEED_GATE_G4_SYSTEM_IMPACT, '', attributes);
}

// --- G5 --------------------------------------------------------------------------------

/** Facts for G5_RESET (RESETTING → DORMANT). */
export interface ResetGateInputs {
  readonly kernelAttached: boolean;
  /** Seed tensors not yet disposed. */
  readonly liveTensors: number;
  /** Parameter-registry entries still owned by the seed. */
  readonly registryEntries: number;
  /** Kernel prefetches still outstanding for the seed. */
  readonly inflightPrefetches: number;
}

/** G5: nothing of the seed is left (kernel, tensors, registry entries, prefetches). */
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

const VIOLATIONS = 'gradient isolation violations present';

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
