/**
 * The tensor work of a step and of a validation pass. A training step runs inside one
 * `tf.tidy` with a single read-back (loss, correct count, squared gradient norms of the
 * host and of each hook); a non-finite loss or gradient, or a loss explosion, fails the
 * step before the update, so bad gradients never reach the weights or the optimizer state.
 */
import { ErrorCode, EsperError } from '../core/index.js';
import { isWidenSite, siteOutputShape, TelemetryLevel, type SeedSiteDescriptor } from '../leyline/index.js';
import { tf, topRightSingularVectors } from '../tensor/index.js';
import type { ValidationResult, WidenGradient } from './controller.js';
import type { Batch, Dataset } from './dataset.js';
import { EmergencyReason } from './emergency.js';
import { hitsOf, LossKind, lossOf } from './loss.js';
import type { HostModel } from './host-model.js';
import { TolariaEvent } from './names.js';
import type { OptimizerManager, OptimizerSyncResult } from './optimizer-manager.js';
import type { TrainerEvents } from './trainer-telemetry.js';
import type { LossDivergenceDetector } from './trainer-stats.js';
import type { SiteSignalInput } from './state-packet.js';

/** Why a step failed: what was not finite or exploded, and its value. (A type literal, so `tf.tidy` may return it.) */
export type StepFailure = {
  readonly reason: typeof EmergencyReason.NON_FINITE_LOSS | typeof EmergencyReason.LOSS_EXPLOSION;
  readonly quantity: 'loss' | 'gradient_norm';
  readonly value: number;
};

/** What one training step measured. */
export interface StepResult {
  readonly loss: number;
  readonly correct: number;
  /** Global L2 norm of every gradient (host and hooks). */
  readonly gradNorm: number;
  readonly hostNorm: number;
  readonly hookNorms: readonly { readonly siteId: string; readonly norm: number; readonly params: number }[];
  /** Set when the step failed; then no update was applied. */
  readonly failure: StepFailure | undefined;
}

/** What the loss of a step or pass is: the loss kind and the dataset's labels (see `loss.ts`). */
export interface LossSpec {
  readonly numClasses: number;
  /** @default 'cross_entropy' */
  readonly loss?: LossKind;
  /** @default 'classes' */
  readonly targets?: Dataset['targets'];
}

/** Forward, loss, gradients, one read-back, and the update if the step is sound. */
export function computeStep(
  input: LossSpec & {
    readonly host: HostModel;
    readonly batch: Batch;
    readonly variables: readonly tf.Variable[];
    readonly optimizer: OptimizerManager;
    readonly divergence: LossDivergenceDetector | undefined;
  },
): StepResult {
  const { host, batch, variables } = input;
  const hooks = [...host.hooks.entries()].map(([siteId, hook]) => ({ siteId, variables: new Set(hook.trainableVariables()) }));
  return tf.tidy(() => {
    let correct: tf.Tensor | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const logits = host.forward(batch.inputs, { training: true });
      // Kept past variableGrads' internal tidy; disposed below.
      correct = tf.keep(hitsOf(logits, batch.labels, input));
      return lossOf(input.loss ?? LossKind.CROSS_ENTROPY, logits, batch.labels, input);
    }, [...variables]);
    try {
      const squared = (list: readonly tf.Variable[]): tf.Tensor => {
        const parts = list.flatMap((v) => {
          const g = grads[v.name];
          return g === undefined ? [] : [tf.sum(tf.square(g))];
        });
        return parts.length === 0 ? tf.scalar(0) : tf.addN(parts);
      };
      const hostVariables = variables.filter((v) => !hooks.some((h) => h.variables.has(v)));
      const groups = [squared(hostVariables), ...hooks.map((h) => squared([...h.variables]))];
      const stats = tf.concat([tf.reshape(value, [1]), tf.reshape(correct as tf.Tensor, [1]), tf.stack(groups)]).dataSync();
      const loss = stats[0] as number;
      const totalSquared = Array.from(stats.subarray(2)).reduce((a, b) => a + b, 0);
      const gradNorm = Math.sqrt(totalSquared);
      const hostNorm = Math.sqrt(stats[2] as number);
      const hookNorms = hooks.map((h, i) => ({
        siteId: h.siteId,
        norm: Math.sqrt(stats[3 + i] as number),
        params: [...h.variables].reduce((n, v) => n + v.size, 0),
      }));
      let failure: StepFailure | undefined;
      if (!Number.isFinite(loss)) failure = { reason: EmergencyReason.NON_FINITE_LOSS, quantity: 'loss', value: loss };
      else if (!Number.isFinite(gradNorm))
        failure = { reason: EmergencyReason.NON_FINITE_LOSS, quantity: 'gradient_norm', value: gradNorm };
      else if (input.divergence?.observe(loss) === true)
        failure = { reason: EmergencyReason.LOSS_EXPLOSION, quantity: 'loss', value: loss };
      if (failure === undefined) input.optimizer.applyGradients(grads);
      return { loss, correct: stats[1] as number, gradNorm, hostNorm, hookNorms, failure };
    } finally {
      correct?.dispose();
    }
  });
}

/**
 * Serves gradient probes: for each WIDEN site in `siteIds`, `M = uᵀ·G` on `batch` at the
 * current weights (no update), where `u` is the site's input and `G` the gradient of the
 * mean training loss with respect to a zero addend on the next block's pre-activation
 * (which is ∂L/∂z there). One extra forward and backward pass for all sites together, in
 * training mode with every hook as it is. Site ids that are not dense WIDEN sites of the
 * host are left out (the matrix is GradMax's for a dense layer; no blueprint asks for it at
 * a conv WIDEN site).
 */
export function computeWidenGradients(
  input: LossSpec & {
    readonly host: HostModel;
    readonly batch: Batch;
    readonly siteIds: readonly string[];
  },
): Map<string, WidenGradient> {
  const sites = input.host.descriptor.sites.filter((s) => isWidenSite(s) && s.convWiden === undefined && input.siteIds.includes(s.siteId));
  const out = new Map<string, WidenGradient>();
  if (sites.length === 0) return out;
  const inputs = new Map<string, tf.Tensor>();
  try {
    tf.tidy(() => {
      const grads = widenAddendGradients(input, sites, inputs);
      for (const [i, site] of sites.entries()) {
        const u = inputs.get(site.siteId) as tf.Tensor;
        const matrix = tf.matMul(tf.reshape(u, [u.shape[0] as number, -1]), grads[i] as tf.Tensor, true, false);
        const [rows, cols] = matrix.shape as [number, number];
        out.set(site.siteId, { inputs: rows, outputs: cols, matrix: Float32Array.from(matrix.dataSync()) });
      }
    });
  } finally {
    tf.dispose([...inputs.values()]);
  }
  return out;
}

/**
 * GradMax's growth signal at every WIDEN site of the host: the top singular value of the
 * site's `M = uᵀ·G` on `batch` (see {@link computeWidenGradients}), the largest gradient
 * norm the incoming weights of one new unit with a unit outgoing vector could receive
 * there. One forward and backward pass for all sites.
 */
export function widenGradientNorms(input: LossSpec & { readonly host: HostModel; readonly batch: Batch }): SiteSignalInput[] {
  const siteIds = input.host.descriptor.sites.filter(isWidenSite).map((s) => s.siteId);
  if (siteIds.length === 0) return [];
  return [...computeWidenGradients({ ...input, siteIds })].map(([siteId, g]) => ({
    siteId,
    widenGradientNorm: topRightSingularVectors(g.matrix, g.inputs, g.outputs, 1).singularValues[0] as number,
  }));
}

/** ∂L/∂(zero addend) per site; records each site's input in `inputs` (kept: the caller disposes them). */
function widenAddendGradients(
  input: LossSpec & { readonly host: HostModel; readonly batch: Batch },
  sites: readonly SeedSiteDescriptor[],
  inputs: Map<string, tf.Tensor>,
): tf.Tensor[] {
  const { host, batch } = input;
  const examples = batch.inputs.shape[0] as number;
  const addends = sites.map((site) => tf.zeros([examples, ...siteOutputShape(site)]));
  return tf.grads((...probes: tf.Tensor[]) => {
    const widenProbes = new Map(
      sites.map((site, i) => [
        site.siteId,
        (u: tf.Tensor): tf.Tensor => {
          // Kept past the gradient's internal tidy.
          inputs.set(site.siteId, tf.keep(tf.clone(u)));
          return probes[i] as tf.Tensor;
        },
      ]),
    );
    const logits = host.forward(batch.inputs, { training: true, widenProbes });
    return lossOf(input.loss ?? LossKind.CROSS_ENTROPY, logits, batch.labels, input);
  })(addends);
}

/**
 * Loss (mean over examples) and accuracy over the whole validation split, in order, in
 * inference mode; with `bypassSites`, those sites act as the identity (a seed's
 * counterfactual pass). Accuracy is 0 for a `values` dataset (not measured).
 */
export function validate(
  host: HostModel,
  dataset: Dataset,
  batchSize: number,
  bypassSites?: ReadonlySet<string>,
  loss: LossKind = LossKind.CROSS_ENTROPY,
): ValidationResult {
  const split = dataset.validation;
  const size = split.size;
  if (size === 0) return { loss: 0, accuracy: 0 };
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < size; start += batchSize) {
    const end = Math.min(size, start + batchSize);
    const indices = new Int32Array(end - start);
    for (let i = 0; i < indices.length; i += 1) indices[i] = start + i;
    const batch = split.batch(indices);
    try {
      const values = tf.tidy(() => {
        const logits = host.forward(batch.inputs, { training: false, ...(bypassSites === undefined ? {} : { bypassSites }) });
        return tf.stack([lossOf(loss, logits, batch.labels, dataset, 'sum'), hitsOf(logits, batch.labels, dataset)]).dataSync();
      });
      lossSum += values[0] as number;
      correct += values[1] as number;
    } finally {
      disposeBatch(batch);
    }
  }
  return { loss: lossSum / size, accuracy: correct / size };
}

/**
 * Brings the optimizer in line with the host's trainable variables (hooks attached or
 * detached since the last step), reports a rebuild, skip or failure, and returns the list
 * to differentiate. Repeats if a late executor call changed the hooks during the await.
 * @throws EsperError INVALID_STATE when the variables keep changing
 */
export async function syncOptimizer(
  host: HostModel,
  optimizer: OptimizerManager,
  globalStep: number,
  events: TrainerEvents,
): Promise<tf.Variable[]> {
  for (let attempt = 0; ; attempt += 1) {
    const variables = host.trainableVariables();
    reportSync(await optimizer.sync(variables, globalStep), globalStep, events);
    const now = host.trainableVariables();
    if (now.length === variables.length && now.every((v, i) => v === variables[i])) return now;
    if (attempt >= 3) {
      throw new EsperError(ErrorCode.INVALID_STATE, 'the host kept changing its trainable variables while the optimizer synced');
    }
  }
}

function reportSync(result: OptimizerSyncResult, step: number, events: TrainerEvents): void {
  switch (result.outcome) {
    case 'unchanged':
      return;
    case 'rebuilt':
      events.event(TolariaEvent.OPTIMIZER_REBUILT, TelemetryLevel.INFO, {
        added: result.added,
        removed: result.removed,
        forced: result.forced,
        latency_ms: result.latencyMs.toFixed(3),
        step,
      });
      return;
    case 'skipped':
      events.event(TolariaEvent.OPTIMIZER_REBUILD_SKIPPED, TelemetryLevel.INFO, { reason: result.reason, pending: result.pending, step });
      return;
    case 'failed':
      events.event(TolariaEvent.OPTIMIZER_REBUILD_FAILED, TelemetryLevel.ERROR, { error: result.error, step });
      return;
  }
}

/** Frees a batch's tensors. */
export function disposeBatch(batch: Batch): void {
  tf.dispose([batch.inputs, batch.labels]);
}
