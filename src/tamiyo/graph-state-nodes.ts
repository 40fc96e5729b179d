/** Nodes built from the training state: the global node, seeds and host sites. */
import { SeedLifecycleStage, SeedSiteKind, type SeedSiteDescriptor, type SeedState, type SystemStatePacket } from '../leyline/index.js';
import type { CoverageRecorder } from './coverage.js';
import { blendAllowed, clamp01, fin, LOG_WIDTH_SCALE, occupies, stageNorm } from './graph-features.js';
import { NODE_FEATURE_DIMS, type NodeSet } from './graph-types.js';
import type { EmbeddingRegistries } from './registries.js';
import type { FeatureNormaliser } from './normaliser.js';

/** What node builders read and update: the running feature stats and the registries. */
export interface NodeSources {
  readonly normaliser: FeatureNormaliser;
  readonly registries: EmbeddingRegistries;
}

export function globalNode(ctx: NodeSources, packet: SystemStatePacket, coverage: CoverageRecorder): NodeSet {
  const n = ctx.normaliser;
  const dim = NODE_FEATURE_DIMS.global;
  const f = new Float32Array(dim);
  const tm = packet.metrics;
  const pair = (col: number, key: string, value: number | undefined): void => {
    const present = value !== undefined && value !== 0 && Number.isFinite(value);
    f[col] = fin(present ? n.normalise(key, value) : n.absent(key));
    f[col + 1] = present ? 1 : 0;
    coverage.observe(`node.global.${key}`, present);
  };
  // The typed TrainingMetrics has no raw `loss`; its EWMA takes the `loss` slot and prior.
  pair(0, 'loss', tm?.lossEwma);
  pair(2, 'validation_loss', packet.validationLoss);
  pair(4, 'training_loss', packet.trainingLoss);
  pair(6, 'gradient_norm', tm?.gradientNorm);
  pair(8, 'samples_per_s', tm?.samplesPerS);
  pair(10, 'hook_latency_ms', tm?.hookLatencyMs);
  f[12] = fin(n.normalise('global_epoch', packet.currentEpoch));
  f[13] = fin(n.normalise('global_step', Math.log1p(Number(packet.globalStep))));
  f[14] = Math.tanh(packet.seedStates.length);
  const epochsTotal = tm?.epochsTotal ?? 0;
  f[15] = fin(epochsTotal > 0 ? n.normalise('epoch_progress', packet.currentEpoch / epochsTotal) : n.absent('epoch_progress'));
  coverage.observe('node.global.epoch', true);
  coverage.observe('node.global.step', true);
  coverage.observe('node.global.seed_count', true);
  coverage.observe('node.global.epoch_progress', epochsTotal > 0);
  return { ids: ['global'], features: f };
}

export function seedNodes(
  ctx: NodeSources,
  seeds: readonly SeedState[],
  siteIndex: ReadonlyMap<string, number>,
  coverage: CoverageRecorder,
): NodeSet {
  const n = ctx.normaliser;
  const registry = ctx.registries.blueprint;
  const dim = NODE_FEATURE_DIMS.seed;
  const f = new Float32Array(seeds.length * dim);
  seeds.forEach((seed, row) => {
    const o = row * dim;
    const metrics = seed.metrics;
    const contribution = metrics?.counterfactualContribution;
    const hasContribution = contribution !== undefined && Number.isFinite(contribution);
    const hasGradient = seed.gradientNorm !== 0 && Number.isFinite(seed.gradientNorm);
    const hasRate = seed.learningRate !== 0 && Number.isFinite(seed.learningRate);
    f[o] = stageNorm(seed);
    f[o + 1] = clamp01(metrics?.alpha ?? 0);
    f[o + 2] = blendAllowed(seed) ? 1 : 0;
    f[o + 3] = Math.tanh(metrics?.isolationViolations ?? 0);
    f[o + 4] = fin(hasContribution ? n.normalise('seed_contribution', contribution) : n.absent('seed_contribution'));
    f[o + 5] = hasContribution ? 1 : 0;
    f[o + 6] = fin(hasGradient ? n.normalise('seed_gradient_norm', seed.gradientNorm) : n.absent('seed_gradient_norm'));
    f[o + 7] = hasGradient ? 1 : 0;
    f[o + 8] = fin(hasRate ? n.normalise('seed_learning_rate', seed.learningRate) : n.absent('seed_learning_rate'));
    f[o + 9] = hasRate ? 1 : 0;
    f[o + 10] = fin(n.normalise('seed_age', seed.ageEpochs));
    f[o + 11] = fin(n.normalise('seed_risk', fin(seed.riskScore)));
    f[o + 12] = registry.get(seed.blueprintId) / registry.maxSize;
    f[o + 13] = metrics !== undefined && metrics.alphaTotalSteps > 0 ? clamp01(metrics.alphaSteps / metrics.alphaTotalSteps) : 0;
    coverage.observe('node.seed.stage', seed.stage !== SeedLifecycleStage.SEED_STAGE_UNKNOWN);
    coverage.observe('node.seed.metrics', metrics !== undefined);
    coverage.observe('node.seed.contribution', hasContribution);
    coverage.observe('node.seed.gradient_norm', hasGradient);
    coverage.observe('node.seed.learning_rate', hasRate);
    coverage.observe('node.seed.age', true);
    coverage.observe('node.seed.risk', true);
    coverage.observe('node.seed.blueprint', seed.blueprintId !== '');
    coverage.observe('node.seed.site', siteIndex.has(seed.siteId));
  });
  return { ids: seeds.map((s) => s.seedId), features: f };
}

export function siteNodes(sites: readonly SeedSiteDescriptor[], seeds: readonly SeedState[], coverage: CoverageRecorder): NodeSet {
  const dim = NODE_FEATURE_DIMS.site;
  const f = new Float32Array(sites.length * dim);
  sites.forEach((site, row) => {
    const o = row * dim;
    const occupant = seeds.find((s) => s.siteId === site.siteId && occupies(s));
    const contribution = occupant?.metrics?.counterfactualContribution;
    const hasContribution = contribution !== undefined && Number.isFinite(contribution);
    const width = site.shape[site.shape.length - 1] ?? 0;
    f[o] = site.kind === SeedSiteKind.DENSE ? 1 : 0;
    f[o + 1] = site.kind === SeedSiteKind.CONV ? 1 : 0;
    f[o + 2] = fin(Math.log2(1 + width) / LOG_WIDTH_SCALE);
    f[o + 3] = row / sites.length;
    f[o + 4] = occupant === undefined ? 0 : 1;
    f[o + 5] = occupant === undefined ? 0 : stageNorm(occupant);
    f[o + 6] = clamp01(occupant?.metrics?.alpha ?? 0);
    f[o + 7] = hasContribution ? Math.max(-1, Math.min(1, contribution)) : 0;
    f[o + 8] = hasContribution ? 1 : 0;
    f[o + 9] = occupant === undefined ? 1 : 0;
    coverage.observe('node.site.kind', site.kind !== SeedSiteKind.UNSPECIFIED);
    coverage.observe('node.site.width', width > 0);
    if (occupant !== undefined) coverage.observe('node.site.occupant_contribution', hasContribution);
  });
  return { ids: sites.map((s) => s.siteId), features: f };
}
