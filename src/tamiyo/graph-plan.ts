/**
 * The rows each candidate blueprint owns in the policy graph: its capped layers,
 * activations and parameters (plus default rows where no candidate supplies any).
 */
import type { SeedSiteDescriptor } from '../leyline/index.js';
import { familyById } from '../karn/index.js';
import { GRAPH_MONITOR_DEFAULTS, type GraphLayer } from '../urza/index.js';
import type { BlueprintCandidate } from './candidates.js';
import { compiledFor, fin, inRange, TIER_MAX } from './graph-features.js';

/** Caps of rows per candidate. */
export interface PlanLimits {
  readonly maxLayers: number;
  readonly maxActivations: number;
  readonly maxParameters: number;
}

export interface ParameterDescriptor {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly span: number;
  readonly value: number | undefined;
  readonly real: boolean;
}

export interface ActivationDescriptor {
  readonly id: string;
  readonly kind: string;
}

/** Layer/activation/parameter rows of one owner (a candidate, or the defaults). */
export interface OwnerGroup {
  /** Candidate index, or −1 for the defaults. */
  readonly owner: number;
  readonly risk: number;
  readonly stageNorm: number;
  layerStart: number;
  layerCount: number;
  /** Layers in the metadata (before the cap). */
  layerTotal: number;
  activationStart: number;
  activationCount: number;
  activationTotal: number;
  parameterStart: number;
  parameterCount: number;
  /** Metadata adjacency (local layer indices); chain when none is valid. */
  adjacency: readonly (readonly [number, number])[];
}

export interface CandidatePlan {
  readonly candidate: BlueprintCandidate;
  readonly id: string;
  readonly risk: number;
  readonly stageNorm: number;
  readonly tierNorm: number;
  readonly layers: readonly GraphLayer[];
  readonly activations: readonly ActivationDescriptor[];
  readonly parameters: readonly ParameterDescriptor[];
  /** Monitor threshold ÷ default threshold (1 without a BSDS, 0.1 for CRITICAL). */
  readonly monitorFactor: number;
  /** Per host site: 0 no fit, 0.5 the family fits, 1 compiled for exactly this site. */
  readonly fits: readonly number[];
  group: OwnerGroup | undefined;
}

export function planCandidate(options: PlanLimits, candidate: BlueprintCandidate, sites: readonly SeedSiteDescriptor[]): CandidatePlan {
  const { descriptor, graph, bsds } = candidate;
  const { maxLayers, maxActivations, maxParameters } = options;
  const bsdsRisk = bsds === undefined ? 0 : fin(bsds.riskScore);
  const risk = bsdsRisk > 0 ? bsdsRisk : fin(descriptor.risk);
  const family = familyById(descriptor.family);
  const fits = sites.map((site) => {
    if (family === undefined || !family.fits(site)) return 0;
    return graph !== undefined && compiledFor(graph, site) ? 1 : 0.5;
  });
  const sourceParameters: ParameterDescriptor[] =
    graph !== undefined && graph.parameters.allowed.length > 0
      ? graph.parameters.allowed.map((p) => ({ name: p.name, min: p.min, max: p.max, span: p.span, value: p.value, real: true }))
      : descriptor.allowedParameters.map((p) => ({
          name: p.name,
          min: p.minValue,
          max: p.maxValue,
          span: p.maxValue - p.minValue,
          value: undefined,
          real: true,
        }));
  const gradientMonitor = graph?.monitors.find((m) => m.metric === 'gradient_norm');
  return {
    candidate,
    id: descriptor.blueprintId,
    risk,
    stageNorm: fin(descriptor.stage) / 10,
    tierNorm: descriptor.tier / TIER_MAX,
    layers: graph === undefined ? [] : graph.layers.slice(0, maxLayers),
    activations: graph === undefined ? [] : graph.activations.slice(0, maxActivations).map((a) => ({ id: a.activationId, kind: a.kind })),
    parameters: sourceParameters.slice(0, maxParameters),
    monitorFactor: gradientMonitor === undefined ? 1 : fin(gradientMonitor.threshold / GRAPH_MONITOR_DEFAULTS.gradientNorm),
    fits,
    group: undefined,
  };
}

/** Assigns node rows: candidates in order, then the defaults where no candidate gave any. */
export function assignGroups(maxLayers: number, plans: CandidatePlan[]): OwnerGroup[] {
  const groups: OwnerGroup[] = [];
  let layer = 0;
  let activation = 0;
  let parameter = 0;
  for (const [index, plan] of plans.entries()) {
    const graph = plan.candidate.graph;
    const group: OwnerGroup = {
      owner: index,
      risk: plan.risk,
      stageNorm: plan.stageNorm,
      layerStart: layer,
      layerCount: plan.layers.length,
      layerTotal: graph?.layers.length ?? 0,
      activationStart: activation,
      activationCount: plan.activations.length,
      activationTotal: graph?.activations.length ?? 0,
      parameterStart: parameter,
      parameterCount: plan.parameters.length,
      adjacency: (graph?.adjacency ?? []).filter(([s, d]) => inRange(s, plan.layers.length) && inRange(d, plan.layers.length)),
    };
    layer += group.layerCount;
    activation += group.activationCount;
    parameter += group.parameterCount;
    plan.group = group;
    groups.push(group);
  }
  if (layer === 0 || activation === 0 || parameter === 0) {
    const layerCount = layer === 0 ? maxLayers : 0;
    const activationCount = activation === 0 ? 1 : 0;
    groups.push({
      owner: -1,
      risk: 0,
      stageNorm: 0,
      layerStart: layer,
      layerCount,
      layerTotal: layerCount,
      activationStart: activation,
      activationCount,
      activationTotal: activationCount,
      parameterStart: parameter,
      parameterCount: parameter === 0 ? 1 : 0,
      adjacency: [],
    });
  }
  return groups;
}
