/** The GNN's outputs (graph-level heads and per-node scores) and their decoding into a decision (reference §8.2). */
import { BlendMode } from '../leyline/index.js';
import type { tf } from '../tensor/index.js';
import { BLEND_HEAD_MODES, POLICY_ACTION_COUNT, PolicyAction } from './gnn-config.js';

/** Plain outputs of one forward pass (batch of one graph). */
export interface GnnOutput {
  /** `[actionClasses]` (see {@link PolicyAction}). */
  readonly actionLogits: Float32Array;
  /** `[paramVector]`, tanh; element 0 is the optimizer delta. */
  readonly paramVector: Float32Array;
  /** `[blendClasses]`, in {@link BLEND_HEAD_MODES} order. */
  readonly blendLogits: Float32Array;
  /** `[scheduleOutputs]`, tanh; (start, end) before §8.2 mapping. */
  readonly schedule: Float32Array;
  /** `[riskClasses]`. */
  readonly riskLogits: Float32Array;
  /** Value estimate. */
  readonly value: number;
  /** `[2]`: open, close. */
  readonly breakerLogits: Float32Array;
  /** One score per `seed` node, in node order. */
  readonly seedScores: Float32Array;
  /** One score per `site` node. */
  readonly siteScores: Float32Array;
  /** One score per `blueprint` node. */
  readonly blueprintScores: Float32Array;
}

/** The same outputs as tensors (for training); the caller owns them. */
export interface GnnTensors {
  readonly actionLogits: tf.Tensor1D;
  readonly paramVector: tf.Tensor1D;
  readonly blendLogits: tf.Tensor1D;
  readonly schedule: tf.Tensor1D;
  readonly riskLogits: tf.Tensor1D;
  readonly value: tf.Tensor1D;
  readonly breakerLogits: tf.Tensor1D;
  readonly seedScores: tf.Tensor1D;
  readonly siteScores: tf.Tensor1D;
  readonly blueprintScores: tf.Tensor1D;
}

/** The outputs in a fixed order (the heads, then the node scores). */
export const TENSOR_OUTPUT_KEYS = [
  'actionLogits',
  'paramVector',
  'blendLogits',
  'schedule',
  'riskLogits',
  'value',
  'breakerLogits',
  'seedScores',
  'siteScores',
  'blueprintScores',
] as const satisfies readonly (keyof GnnTensors)[];

/** What the policy decided, decoded from a {@link GnnOutput} (reference §8.2). */
export interface PolicyDecision {
  /** The chosen action; reserved indices decode to WAIT. */
  readonly action: PolicyAction;
  /** The raw argmax of the action logits (may be a reserved index). */
  readonly actionIndex: number;
  /** Softmax probability of `actionIndex`. */
  readonly actionProbability: number;
  /** `paramVector[0]`: the optimizer delta (tanh, in [−1, 1]). */
  readonly paramDelta: number;
  /** The whole param vector. */
  readonly paramVector: Float32Array;
  /** Argmax of the blend logits. */
  readonly blendIndex: number;
  /** The leyline blend mode of `blendIndex`. */
  readonly blendMode: BlendMode;
  /** Argmax of the risk logits. */
  readonly riskIndex: number;
  /**
   * The risk the head predicts, in [0, 1]: the expected class of the softmax over the risk
   * classes, which are ordered from none (0) to critical (riskClasses − 1), divided by
   * riskClasses − 1. Tamiyo's risk engine reads it as the policy's risk score. (The
   * prototype used the probability of the argmax class, which is a confidence, not a risk:
   * a network confident of any class, "none" included, scored above 0.85 and had its
   * growth held as "elevated".)
   */
  readonly riskScore: number;
  /** Schedule start, fraction of the blending window in [0, 1]. */
  readonly scheduleStart: number;
  /** Schedule end, in [scheduleStart, 1]. */
  readonly scheduleEnd: number;
  /** Value estimate. */
  readonly value: number;
  /** sigmoid(breaker open logit). */
  readonly breakerOpenScore: number;
  /** sigmoid(breaker close logit). */
  readonly breakerCloseScore: number;
  /** Best `seed` node row, or undefined when there are no (finitely scored) seeds. */
  readonly seedIndex: number | undefined;
  /** Best `site` node row, or undefined. */
  readonly siteIndex: number | undefined;
  /** Best `blueprint` node row, or undefined. */
  readonly blueprintIndex: number | undefined;
}

/** Index of the first maximum among finite values; undefined when there is none. */
export function argmaxFinite(values: ArrayLike<number>): number | undefined {
  let best: number | undefined;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i] as number;
    if (!Number.isFinite(v)) continue;
    if (best === undefined || v > bestValue) {
      best = i;
      bestValue = v;
    }
  }
  return best;
}

/** Σ_k softmax(logits)_k · k / (K − 1): the expected class, as a fraction of the highest; 0 for one class. */
function expectedClassFraction(logits: ArrayLike<number>): number {
  if (logits.length < 2) return 0;
  return softmax(logits).reduce((sum, p, i) => sum + p * i, 0) / (logits.length - 1);
}

function softmaxAt(logits: ArrayLike<number>, index: number): number {
  return softmax(logits)[index] ?? Number.NaN;
}

/** The probabilities of `logits` (max-subtracted, so large logits do not overflow). */
function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i += 1) max = Math.max(max, logits[i] as number);
  const p = Float64Array.from(logits, (logit) => Math.exp(logit - max));
  const sum = p.reduce((a, b) => a + b, 0);
  return p.map((x) => x / sum);
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

/**
 * The blend head's choice among `allowed` modes: the class of highest finite logit whose
 * mode ({@link BLEND_HEAD_MODES}) is allowed; undefined when none is.
 */
export function blendChoiceAmong(
  blendLogits: ArrayLike<number>,
  allowed: readonly BlendMode[],
): { blendIndex: number; blendMode: BlendMode } | undefined {
  const masked = Array.from(blendLogits, (logit, i) => {
    const mode = BLEND_HEAD_MODES[i];
    return mode !== undefined && allowed.includes(mode) ? logit : Number.NaN;
  });
  const blendIndex = argmaxFinite(masked);
  const blendMode = blendIndex === undefined ? undefined : BLEND_HEAD_MODES[blendIndex];
  return blendIndex === undefined || blendMode === undefined ? undefined : { blendIndex, blendMode };
}

/** Decodes outputs into a decision: argmaxes, probabilities, §8.2 schedule, best nodes. */
export function decodeOutput(output: GnnOutput): PolicyDecision {
  const actionIndex = argmaxFinite(output.actionLogits) ?? PolicyAction.WAIT;
  const action = actionIndex < POLICY_ACTION_COUNT ? (actionIndex as PolicyAction) : PolicyAction.WAIT;
  const blendIndex = argmaxFinite(output.blendLogits) ?? 0;
  const riskIndex = argmaxFinite(output.riskLogits) ?? 0;
  let start = clamp01(((output.schedule[0] ?? -1) + 1) / 2);
  let end = clamp01(((output.schedule[1] ?? -1) + 1) / 2);
  if (end < start) [start, end] = [end, start];
  return {
    action,
    actionIndex,
    actionProbability: softmaxAt(output.actionLogits, actionIndex),
    paramDelta: output.paramVector[0] ?? 0,
    paramVector: output.paramVector,
    blendIndex,
    blendMode: BLEND_HEAD_MODES[blendIndex] ?? BlendMode.CONVEX,
    riskIndex,
    riskScore: expectedClassFraction(output.riskLogits),
    scheduleStart: start,
    scheduleEnd: end,
    value: output.value,
    breakerOpenScore: sigmoid(output.breakerLogits[0] ?? 0),
    breakerCloseScore: sigmoid(output.breakerLogits[1] ?? 0),
    seedIndex: argmaxFinite(output.seedScores),
    siteIndex: argmaxFinite(output.siteScores),
    blueprintIndex: argmaxFinite(output.blueprintScores),
  };
}
