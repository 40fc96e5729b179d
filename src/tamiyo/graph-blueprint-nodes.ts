/** Nodes built from the candidate blueprints: blueprints and their layers, activations and parameters. */
import { HandlingClass } from '../leyline/index.js';
import { familyById } from '../karn/index.js';
import type { CoverageRecorder } from './coverage.js';
import {
  ACTIVATION_TRAITS,
  BLEND_MODE_COUNT,
  clamp01,
  fin,
  HANDLING_MAX,
  HAZARD_MAX,
  layerRole,
  LOG_WIDTH_SCALE,
} from './graph-features.js';
import type { CandidatePlan, OwnerGroup } from './graph-plan.js';
import type { NodeSources } from './graph-state-nodes.js';
import { NODE_FEATURE_DIMS, type NodeSet } from './graph-types.js';

export function blueprintNodes(ctx: NodeSources, plans: readonly CandidatePlan[], coverage: CoverageRecorder): NodeSet {
  const n = ctx.normaliser;
  const registry = ctx.registries.blueprint;
  const dim = NODE_FEATURE_DIMS.blueprint;
  const f = new Float32Array(plans.length * dim);
  plans.forEach((plan, row) => {
    const o = row * dim;
    const { descriptor, graph, bsds } = plan.candidate;
    const paramCount = graph?.parameters.count ?? 0;
    const quarantined =
      descriptor.quarantineOnly || plan.candidate.quarantined === true || bsds?.handlingClass === HandlingClass.QUARANTINE;
    // Reference §3: computed from the descriptor risk, before any BSDS override.
    const candidateScore = Math.max(
      0,
      1 - fin(descriptor.risk) + 0.05 * fin(descriptor.stage) + 0.02 * descriptor.allowedParameters.length,
    );
    f[o] = registry.get(plan.id) / registry.maxSize;
    f[o + 1] = plan.tierNorm;
    f[o + 2] = plan.risk;
    f[o + 3] = plan.stageNorm;
    f[o + 4] = fin(paramCount > 0 ? n.normalise('blueprint_param_log', Math.log1p(paramCount)) : n.absent('blueprint_param_log'));
    f[o + 5] = paramCount > 0 ? 1 : 0;
    f[o + 6] = bsds === undefined ? 0 : 1;
    f[o + 7] = (bsds?.hazardBand ?? 0) / HAZARD_MAX;
    f[o + 8] = (bsds?.handlingClass ?? 0) / HANDLING_MAX;
    f[o + 9] = quarantined ? 1 : 0;
    f[o + 10] = descriptor.approvalRequired ? 1 : 0;
    f[o + 11] = plan.fits.length === 0 ? 0 : plan.fits.filter((x) => x > 0).length / plan.fits.length;
    f[o + 12] = fin(n.normalise('blueprint_candidate_score', candidateScore));
    f[o + 13] = (graph?.capabilities.allowedBlendModes.length ?? 0) / BLEND_MODE_COUNT;
    coverage.observe('node.blueprint.embedding', true);
    coverage.observe('node.blueprint.tier', descriptor.tier !== 0);
    coverage.observe('node.blueprint.family', familyById(descriptor.family) !== undefined);
    coverage.observe('node.blueprint.graph', graph !== undefined);
    coverage.observe('node.blueprint.bsds', bsds !== undefined);
  });
  return { ids: plans.map((p) => p.id), features: f };
}

export function layerNodes(
  ctx: NodeSources,
  plans: readonly CandidatePlan[],
  groups: readonly OwnerGroup[],
  rows: number,
  coverage: CoverageRecorder,
): NodeSet {
  const n = ctx.normaliser;
  const roles = ctx.registries.layerType;
  const kinds = ctx.registries.activationType;
  const dim = NODE_FEATURE_DIMS.layer;
  const f = new Float32Array(rows * dim);
  const ids: string[] = [];
  for (const group of groups) {
    const plan = group.owner < 0 ? undefined : plans[group.owner];
    const total = Math.max(1, group.layerTotal);
    const activationKind = plan?.candidate.graph?.activations[0]?.kind ?? '';
    const blueprintCount = plan?.candidate.graph?.parameters.count ?? 0;
    for (let l = 0; l < group.layerCount; l += 1) {
      const o = (group.layerStart + l) * dim;
      const layer = plan?.layers[l];
      f[o] = (l + 1) / total;
      if (layer === undefined) {
        ids.push(`default-L${l}`);
        f[o + 2] = n.absent('layer_parameter_count');
        coverage.observe('node.layer.descriptor', false);
        coverage.observe('node.layer.parameter_count', false);
        coverage.observe('node.layer.shape', false);
        continue;
      }
      ids.push(layer.layerId);
      const count = fin(layer.parameterCount);
      const fanOut = layer.shape[layer.shape.length - 1] ?? 1;
      const fanIn = fanOut > 0 ? count / fanOut : 0;
      f[o + 1] = 1;
      f[o + 2] = fin(count > 0 ? n.normalise('layer_parameter_count', Math.log1p(count)) : n.absent('layer_parameter_count'));
      f[o + 3] = count > 0 ? 1 : 0;
      f[o + 4] = Math.min(layer.shape.length, 4) / 4;
      f[o + 5] = fin(Math.log2(1 + fanIn) / LOG_WIDTH_SCALE);
      f[o + 6] = fin(Math.log2(1 + fanOut) / LOG_WIDTH_SCALE);
      f[o + 7] = roles.get(layerRole(layer.name)) / roles.maxSize;
      f[o + 8] = kinds.get(activationKind) / kinds.maxSize;
      f[o + 9] = blueprintCount > 0 ? clamp01(count / blueprintCount) : 0;
      f[o + 10] = layer.dtype.startsWith('float') ? 1 : 0;
      f[o + 11] = Math.min(1, group.layerCount / total);
      coverage.observe('node.layer.descriptor', true);
      coverage.observe('node.layer.parameter_count', count > 0);
      coverage.observe('node.layer.shape', layer.shape.length > 0);
    }
  }
  return { ids, features: f };
}

export function activationNodes(
  ctx: NodeSources,
  plans: readonly CandidatePlan[],
  groups: readonly OwnerGroup[],
  rows: number,
  coverage: CoverageRecorder,
): NodeSet {
  const kinds = ctx.registries.activationType;
  const dim = NODE_FEATURE_DIMS.activation;
  const f = new Float32Array(rows * dim);
  const ids: string[] = [];
  for (const group of groups) {
    const plan = group.owner < 0 ? undefined : plans[group.owner];
    const total = Math.max(1, group.activationTotal);
    for (let j = 0; j < group.activationCount; j += 1) {
      const o = (group.activationStart + j) * dim;
      const activation = plan?.activations[j];
      f[o + 2] = total > 1 ? j / (total - 1) : 0;
      f[o + 7] = 1 / total;
      if (activation === undefined) {
        ids.push(`default-A${j}`);
        coverage.observe('node.activation.descriptor', false);
        coverage.observe('node.activation.kind', false);
        continue;
      }
      ids.push(activation.id);
      const traits = ACTIVATION_TRAITS[activation.kind];
      f[o] = kinds.get(activation.kind) / kinds.maxSize;
      f[o + 1] = 1;
      f[o + 3] = traits?.[0] ?? 0;
      f[o + 4] = traits?.[1] ?? 0;
      f[o + 5] = traits?.[2] ?? 0;
      f[o + 6] = traits?.[3] ?? 0;
      coverage.observe('node.activation.descriptor', true);
      coverage.observe('node.activation.kind', traits !== undefined);
    }
  }
  return { ids, features: f };
}

export function parameterNodes(
  ctx: NodeSources,
  plans: readonly CandidatePlan[],
  groups: readonly OwnerGroup[],
  rows: number,
  coverage: CoverageRecorder,
): NodeSet {
  const n = ctx.normaliser;
  const dim = NODE_FEATURE_DIMS.parameter;
  const f = new Float32Array(rows * dim);
  const ids: string[] = [];
  for (const group of groups) {
    const plan = group.owner < 0 ? undefined : plans[group.owner];
    for (let k = 0; k < group.parameterCount; k += 1) {
      const o = (group.parameterStart + k) * dim;
      const parameter = plan?.parameters[k];
      f[o + 6] = group.risk;
      f[o + 7] = group.stageNorm;
      if (parameter === undefined) {
        // The §5.1 default `alpha`: its values are placeholders, so they stay absent (0).
        ids.push('default-alpha');
        f[o + 5] = 0.5;
        coverage.observe('node.parameter.descriptor', false);
        coverage.observe('node.parameter.value', false);
        continue;
      }
      ids.push(`${plan?.id ?? 'default'}-${parameter.name}`);
      const mid = (parameter.min + parameter.max) / 2;
      const hasValue = parameter.value !== undefined && Number.isFinite(parameter.value);
      const current = hasValue ? (parameter.value as number) : mid;
      f[o] = fin(n.normalise('parameter_min', parameter.min));
      f[o + 1] = fin(n.normalise('parameter_max', parameter.max));
      f[o + 2] = fin(n.normalise('parameter_span', parameter.span));
      f[o + 3] = fin(n.normalise('parameter_default', current));
      f[o + 4] = hasValue ? 1 : 0;
      f[o + 5] = parameter.span > 0 ? clamp01((current - parameter.min) / parameter.span) : 0.5;
      f[o + 8] = parameter.real ? 1 : 0;
      f[o + 9] = Number.isInteger(parameter.min) && Number.isInteger(parameter.max) ? 1 : 0;
      coverage.observe('node.parameter.descriptor', true);
      coverage.observe('node.parameter.value', hasValue);
    }
  }
  return { ids, features: f };
}
