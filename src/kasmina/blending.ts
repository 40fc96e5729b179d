/**
 * Alpha blending of a seed into its host site (reference prototype-kasmina §10): the seed
 * module returns a delta `s` from `stopGradient(x)`, the site continues with `x + a·s`, and
 * the blend mode decides how much of the host path's gradient survives (modes and the
 * schedule: docs/architecture.md, Kasmina). Departures from the prototype: bad configs throw
 * `KASMINA_BLEND_CONFIG_INVALID` instead of becoming CONVEX (§10.5, §17.8); CONFIDENCE gates
 * by the controller's `policy_logits` (§10.3); the host path keeps its gradient; with every
 * effective alpha 0 the output is `x` itself.
 */
import { ErrorCode, EsperError, CONTRACT_LIMITS } from '../core/index.js';
import {
  BlendMode,
  BlendModeSource,
  blendModesAt,
  isWidenSite,
  type BlendConfig,
  type CommandSeedOperation,
  type SeedSiteDescriptor,
} from '../leyline/index.js';
import { stopGradient, tf } from '../tensor/index.js';

/** How a grafted seed's output is mixed into the host. */
export interface BlendPlan {
  /** CONVEX, RESIDUAL, CHANNEL or CONFIDENCE; never UNSPECIFIED. */
  readonly mode: BlendMode;
  /** Who chose the mode. */
  readonly source: BlendModeSource;
  /** Per-channel-group alpha multipliers in [0, 1] (CHANNEL only; empty otherwise). */
  readonly alphaVec: readonly number[];
  /** CONFIDENCE only: σ(k·(margin − τ)) of the controller's logits, in [0, 1]. */
  readonly confidenceGate?: number;
  /** CONFIDENCE clamp of a non-zero effective alpha; 0 and 1 for the other modes. */
  readonly alphaLo: number;
  readonly alphaHi: number;
}

/** How the slot combines host and seed in the current stage. */
export type BlendPhase = 'isolated' | 'blended' | 'fused';

/** Defaults of the blend schedule and the CONFIDENCE gate (reference §2, §10). */
export const BLEND_DEFAULTS = Object.freeze({
  /** Alpha schedule length, in steps. */
  totalSteps: 20,
  /** Alpha schedule temperature, in steps. */
  temperature: 2,
  /** CONFIDENCE gate steepness when `gate_k` is 0. */
  gateK: 4,
  /** CONFIDENCE gate margin threshold when `gate_tau` is 0. */
  gateTau: 0.2,
});

/** A frozen plan of a mode without parameters (CONVEX, RESIDUAL). */
function plainPlan(mode: BlendMode, source: BlendModeSource): BlendPlan {
  return Object.freeze({ mode, source, alphaVec: Object.freeze([]), alphaLo: 0, alphaHi: 1 });
}

/** The default plan: CONVEX, chosen by default. */
export const DEFAULT_BLEND_PLAN: BlendPlan = plainPlan(BlendMode.CONVEX, BlendModeSource.DEFAULT);

/**
 * Alpha after `step` of a `totalSteps` ramp: the logistic σ((step − totalSteps/2) /
 * temperature) rescaled so the ramp starts at exactly 0 and ends at exactly 1 (clamped
 * outside `[0, totalSteps]`); 1 when `totalSteps ≤ 0`. Temperatures below 1e-6 count as
 * 1e-6.
 *
 * Departure from the prototype (reference §10.1), whose raw logistic never reached 1
 * inside BLENDING (0.993 at step 20 of 20 with temperature 2, only 0.93 with temperature
 * 3) and then jumped to 1 on entering SHADOWING: here the schedule's end is the blend's
 * end whatever the temperature, and the step into SHADOWING is continuous.
 */
export function alphaSchedule(step: number, totalSteps: number, temperature: number): number {
  if (totalSteps <= 0) return 1;
  const t = Math.max(temperature, 1e-6);
  // The tanh form of the logistic does not overflow for large |z|.
  const logistic = (z: number): number => 0.5 * (1 + Math.tanh(0.5 * z));
  const low = logistic(-totalSteps / 2 / t);
  const high = logistic(totalSteps / 2 / t);
  const clamped = Math.min(Math.max(step, 0), totalSteps);
  return Math.min(1, Math.max(0, (logistic((clamped - totalSteps / 2) / t) - low) / (high - low)));
}

/** The plan of a WIDEN site when no mode is given: RESIDUAL, chosen by default. */
export const WIDEN_BLEND_PLAN: BlendPlan = plainPlan(BlendMode.RESIDUAL, BlendModeSource.DEFAULT);

/**
 * Resolves the blend mode and its parameters for a seed at `site`. At a WIDEN site the only
 * mode is RESIDUAL (the seed's units add to the next layer's pre-activation, which no other
 * mode can scale down): unset means RESIDUAL, any other mode is refused
 * (`widen_requires_residual`). Elsewhere, mode precedence:
 * `operation.blend_mode` (source: the metadata's `mode_source` when `blend.mode` agrees,
 * else OPERATOR), then `blend.mode` (its `mode_source`, POLICY if
 * unset), then CONVEX (source DEFAULT); UNSPECIFIED counts as unset.
 *
 * @throws EsperError KASMINA_BLEND_CONFIG_INVALID with `details.reason`:
 *   `channel_alpha_vec_missing`, `alpha_vec_too_long`, `alpha_vec_out_of_range`,
 *   `alpha_vec_channel_mismatch`, `confidence_gate_missing_logits`,
 *   `confidence_logits_invalid`, `alpha_bounds_invalid`, `gate_params_invalid`,
 *   `unknown_mode`, `widen_requires_residual`.
 */
export function resolveBlendPlan(operation: CommandSeedOperation, blend: BlendConfig | undefined, site: SeedSiteDescriptor): BlendPlan {
  if (isWidenSite(site)) return widenPlan(operation, blend, site);
  let mode: BlendMode;
  let source: BlendModeSource;
  if (operation.blendMode !== undefined && operation.blendMode !== BlendMode.UNSPECIFIED) {
    mode = operation.blendMode;
    // The decision metadata says who chose the mode when it agrees with the operation.
    source =
      blend !== undefined && blend.mode === mode && blend.modeSource !== BlendModeSource.UNSPECIFIED
        ? blend.modeSource
        : BlendModeSource.OPERATOR;
  } else if (blend !== undefined && blend.mode !== BlendMode.UNSPECIFIED) {
    mode = blend.mode;
    source = blend.modeSource === BlendModeSource.UNSPECIFIED ? BlendModeSource.POLICY : blend.modeSource;
  } else {
    return DEFAULT_BLEND_PLAN;
  }
  switch (mode) {
    case BlendMode.CONVEX:
    case BlendMode.RESIDUAL:
      return plainPlan(mode, source);
    case BlendMode.CHANNEL:
      return Object.freeze({ mode, source, alphaVec: Object.freeze(channelVector(blend, site)), alphaLo: 0, alphaHi: 1 });
    case BlendMode.CONFIDENCE:
      return confidencePlan(source, blend);
    default:
      throw invalid('unknown_mode', `unknown blend mode ${String(mode)}`, { mode: String(mode) });
  }
}

/**
 * Effective alpha(s) for `alpha` under `plan`: a number for CONVEX, RESIDUAL and CONFIDENCE;
 * for CHANNEL a vector of `channels` entries, clamp01(alpha·vec[group of channel]).
 */
export function effectiveAlphas(plan: BlendPlan, alpha: number, channels: number): Float32Array | number {
  const a = clamp01(alpha);
  switch (plan.mode) {
    case BlendMode.CHANNEL: {
      const groups = plan.alphaVec.length;
      requireChannelGroups(groups, channels);
      const width = channels / groups;
      const out = new Float32Array(channels);
      for (let c = 0; c < channels; c += 1) out[c] = clamp01(a * (plan.alphaVec[Math.floor(c / width)] ?? 0));
      return out;
    }
    case BlendMode.CONFIDENCE: {
      if (a === 0) return 0;
      const gated = a * (plan.confidenceGate ?? 1);
      return Math.min(plan.alphaHi, Math.max(plan.alphaLo, gated));
    }
    default:
      return a;
  }
}

/**
 * The expected ∂y/∂x through the host path for {@link blendActivation}: 1 in the isolated
 * and fused phases and for RESIDUAL, 1 − a for CONVEX and CONFIDENCE, per channel 1 − a_c for CHANNEL.
 */
export function hostPathGradientScale(plan: BlendPlan, alpha: number, phase: BlendPhase, channels: number): Float32Array | number {
  if (phase !== 'blended' || plan.mode === BlendMode.RESIDUAL) return 1;
  const a = effectiveAlphas(plan, alpha, channels);
  if (typeof a === 'number') return 1 - a;
  return a.map((v) => 1 - v);
}

/**
 * Mixes the seed delta `seedOut` (computed from `stopGradient(x)`) into the host activation
 * `x` (channels last). Call inside `tf.tidy`.
 *
 * - `isolated` (TRAINING): `x + (s − stopGradient(s))` — forward exactly `x`; the seed gets
 *   the gradient it would get at alpha 1; the host gets none of the seed path's.
 * - RESIDUAL: `x + a·s`; the host path keeps gradient 1.
 * - `fused` (FOSSILIZED, `seedOut` computed from `x` itself): `x + a·s` in every mode — the
 *   seed is part of the host.
 * - CONVEX / CONFIDENCE / CHANNEL: `x + a·(s − (x − stopGradient(x)))` — algebraically
 *   `(1−a)·x + a·(stopGradient(x) + s)`, arranged so the forward value rounds exactly like
 *   `x + a·s` (the bracketed `x − stopGradient(x)` is 0 forward, −1 backward): host path
 *   gradient 1 − a, seed gradient a. CHANNEL uses a per-channel a over the last axis.
 *
 * When every effective alpha is 0, `x` itself is returned (bit-identical, and immune to a
 * non-finite seed output).
 */
export function blendActivation(x: tf.Tensor, seedOut: tf.Tensor, alpha: number, plan: BlendPlan, phase: BlendPhase): tf.Tensor {
  if (phase === 'isolated') return tf.add(x, tf.sub(seedOut, stopGradient(seedOut)));
  const channels = x.shape[x.shape.length - 1] ?? 1;
  const a = effectiveAlphas(plan, alpha, channels);
  if (typeof a === 'number') {
    if (a === 0) return x;
    const scale = tf.scalar(a);
    if (plan.mode === BlendMode.RESIDUAL || phase === 'fused') return tf.add(x, tf.mul(scale, seedOut));
    return tf.add(x, tf.mul(scale, takeOver(x, seedOut)));
  }
  if (a.every((v) => v === 0)) return x;
  return tf.add(x, tf.mul(tf.tensor1d(a), phase === 'fused' ? seedOut : takeOver(x, seedOut)));
}

/**
 * What a seed at a WIDEN site contributes to the next layer's pre-activation `z` (the host
 * adds it), from the module's output `seedOut`. Call inside `tf.tidy`.
 *
 * - `isolated` (TRAINING): `s − stopGradient(s)` — forward exactly 0, so `z` is unchanged;
 *   the seed gets the gradient it would get at alpha 1 (straight-through).
 * - `blended` and `fused`: `a·s` (RESIDUAL; the plan of a WIDEN site is always RESIDUAL).
 *
 * With alpha 0 the contribution is zeros (immune to a non-finite seed output).
 */
export function blendContribution(seedOut: tf.Tensor, alpha: number, phase: BlendPhase): tf.Tensor {
  if (phase === 'isolated') return tf.sub(seedOut, stopGradient(seedOut));
  const a = clamp01(alpha);
  if (a === 0) return tf.zerosLike(seedOut);
  return tf.mul(tf.scalar(a), seedOut);
}

function widenPlan(operation: CommandSeedOperation, blend: BlendConfig | undefined, site: SeedSiteDescriptor): BlendPlan {
  const requested = [operation.blendMode, blend?.mode].find((m) => m !== undefined && m !== BlendMode.UNSPECIFIED);
  if (requested === undefined) return WIDEN_BLEND_PLAN;
  if (!blendModesAt(site).includes(requested)) {
    throw invalid('widen_requires_residual', `a WIDEN site blends RESIDUAL only, not ${BlendMode[requested] ?? String(requested)}`, {
      mode: String(requested),
    });
  }
  // Who chose it, by the same precedence as the other sites' modes.
  const metadataSource = blend?.mode === requested ? blend.modeSource : BlendModeSource.UNSPECIFIED;
  const fallback = operation.blendMode === requested ? BlendModeSource.OPERATOR : BlendModeSource.POLICY;
  const source = metadataSource === BlendModeSource.UNSPECIFIED ? fallback : metadataSource;
  return plainPlan(BlendMode.RESIDUAL, source);
}

/** `s − (x − stopGradient(x))`: forward `s`, gradient −1 into the host path. */
function takeOver(x: tf.Tensor, seedOut: tf.Tensor): tf.Tensor {
  return tf.sub(seedOut, tf.sub(x, stopGradient(x)));
}

function channelVector(blend: BlendConfig | undefined, site: SeedSiteDescriptor): number[] {
  const vec = blend?.alphaVec ?? [];
  if (vec.length === 0) throw invalid('channel_alpha_vec_missing', 'BLEND_MODE_CHANNEL needs a non-empty alpha_vec');
  if (vec.length > CONTRACT_LIMITS.alphaVecMaxEntries) {
    throw invalid('alpha_vec_too_long', `alpha_vec has ${vec.length} entries, at most ${CONTRACT_LIMITS.alphaVecMaxEntries}`, {
      entries: vec.length,
      limit: CONTRACT_LIMITS.alphaVecMaxEntries,
    });
  }
  const bad = vec.findIndex((v) => !(v >= 0 && v <= 1));
  if (bad >= 0) throw invalid('alpha_vec_out_of_range', `alpha_vec[${bad}] = ${vec[bad]} is outside [0, 1]`, { index: bad });
  const channels = site.shape[site.shape.length - 1] ?? 0;
  if (channels < 1 || channels % vec.length !== 0) {
    throw invalid(
      'alpha_vec_channel_mismatch',
      `alpha_vec length ${vec.length} does not divide the ${channels} channels of site ${site.siteId}`,
      {
        entries: vec.length,
        channels,
        siteId: site.siteId,
      },
    );
  }
  return [...vec];
}

function confidencePlan(source: BlendModeSource, blend: BlendConfig | undefined): BlendPlan {
  const logits = blend?.policyLogits ?? [];
  if (logits.length < 2) {
    throw invalid('confidence_gate_missing_logits', `BLEND_MODE_CONFIDENCE needs at least 2 policy_logits, got ${logits.length}`, {
      logits: logits.length,
    });
  }
  if (!logits.every(Number.isFinite)) throw invalid('confidence_logits_invalid', 'policy_logits must be finite');
  const gateK = blend?.gateK || BLEND_DEFAULTS.gateK;
  const gateTau = blend?.gateTau || BLEND_DEFAULTS.gateTau;
  if (!(gateK > 0 && Number.isFinite(gateK) && gateTau > 0 && Number.isFinite(gateTau))) {
    throw invalid('gate_params_invalid', `gate_k ${gateK} and gate_tau ${gateTau} must be positive and finite`);
  }
  const alphaLo = blend?.alphaLo ?? 0;
  const alphaHi = blend?.alphaHi || 1;
  if (!(alphaLo >= 0 && alphaLo <= alphaHi && alphaHi <= 1)) {
    throw invalid('alpha_bounds_invalid', `need 0 ≤ alpha_lo (${alphaLo}) ≤ alpha_hi (${alphaHi}) ≤ 1`);
  }
  const margin = topTwoMargin(softmax(logits));
  const confidenceGate = 1 / (1 + Math.exp(-gateK * (margin - gateTau)));
  return Object.freeze({
    mode: BlendMode.CONFIDENCE,
    source,
    alphaVec: Object.freeze([]),
    confidenceGate,
    alphaLo,
    alphaHi,
  });
}

function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

function topTwoMargin(probabilities: readonly number[]): number {
  let first = -Infinity;
  let second = -Infinity;
  for (const p of probabilities) {
    if (p > first) {
      second = first;
      first = p;
    } else if (p > second) {
      second = p;
    }
  }
  return first - second;
}

function requireChannelGroups(groups: number, channels: number): void {
  if (groups < 1 || channels < 1 || channels % groups !== 0) {
    throw invalid('alpha_vec_channel_mismatch', `alpha_vec length ${groups} does not divide ${channels} channels`, {
      entries: groups,
      channels,
    });
  }
}

function clamp01(value: number): number {
  if (!(value > 0)) return 0;
  return value > 1 ? 1 : value;
}

function invalid(reason: string, message: string, details: Record<string, string | number> = {}): EsperError {
  return new EsperError(ErrorCode.KASMINA_BLEND_CONFIG_INVALID, message, { details: { reason, ...details } });
}
