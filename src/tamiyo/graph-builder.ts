/**
 * Graph builder: turns a `SystemStatePacket`, the host's descriptor and the candidate
 * blueprints into the heterogeneous {@link PolicyGraph} the GNN reads (reference
 * prototype-tamiyo-simic §5). Feature layouts are listed per node type below
 * (`GLOBAL_FEATURES`, ...); relations are {@link GRAPH_RELATIONS}.
 *
 * Departures from the prototype:
 * - One `blueprint` node per candidate and one `site` node per host seed site (§5.1 had a
 *   single blueprint keyed by packet id and no sites). Layer, activation and parameter
 *   nodes belong to the candidate whose {@link GraphMetadata} they come from, capped per
 *   candidate; edges among them stay within one owner. When no candidate supplies layers
 *   (activations, parameters) the §5.1 defaults are emitted, owned by no candidate.
 * - Inputs are typed: `TrainingMetrics` replaces the `training_metrics` map, `SeedMetrics`
 *   the seed metrics map, and Urza's {@link GraphMetadata} the metadata dict. Layer
 *   adjacency is kept from the metadata (§17.4); monitor edges link a seed to the layers of
 *   the blueprint it grew from, weighted by how far a BSDS tightened its monitors.
 * - Absent features cost nothing in the normaliser ({@link FeatureNormaliser.absent}).
 * - Blueprint nodes carry blueprint facts only (BSDS band, handling, fit to the host);
 *   the prototype copied the packet losses into them, normalising them twice per build.
 * - `blend_allowed` comes from the typed `SeedMetrics.blend_allowed`; without metrics it
 *   is BLENDING..PROBATIONARY, not "stage ≥ BLENDING" (§5.3 ⚠ counted CULLED). The
 *   capability override from `allowed_blending_methods` is gone: every compiled
 *   blueprint allows CONVEX, so it would always fire.
 * - Effective blueprint risk: the BSDS risk score when one is given and positive, else the
 *   descriptor risk (§3 ⚠: a BSDS without a score no longer masks the risk as 0).
 * - Empty or duplicate seed, site and blueprint ids are rejected (`TAMIYO_GRAPH_INVALID`)
 *   instead of being replaced by placeholder ids (spec 00 §2).
 * - Relation names are unique: `blueprint → global` is `annotated_by` (the prototype
 *   reused `monitored_by`, also the name of `layer → seed`).
 * - Coverage skips seed-dependent edge keys when there are no seeds, and edges built on
 *   default (metadata-less) nodes count as absent.
 * - `annotates` carries stage/10 like the blueprint node (§5.8 used the raw stage).
 * - `blueprint fits site` exists when the family fits the site (Karn's predicate); its
 *   first attribute is 1 when the known artifact was compiled for exactly that site, else
 *   0.5 (a compile for that site is still needed).
 */
import { ErrorCode, EsperError } from '../core/index.js';
import {
  HandlingClass,
  SeedLifecycleStage,
  SeedSiteKind,
  type BlueprintDescriptor,
  type BSDS,
  type HostDescriptor,
  type SeedSiteDescriptor,
  type SeedState,
  type SystemStatePacket,
} from '../leyline/index.js';
import { familyById } from '../karn/index.js';
import { GRAPH_MONITOR_DEFAULTS, type GraphLayer, type GraphMetadata } from '../urza/index.js';
import { CoverageRecorder } from './coverage.js';
import {
  EDGE_ATTR_DIM,
  NODE_FEATURE_DIMS,
  type EdgeSet,
  type NodeSet,
  type NodeType,
  type PolicyGraph,
  type RelationSpec,
} from './graph-types.js';
import type { FeatureNormaliser } from './normaliser.js';
import type { EmbeddingRegistries } from './registries.js';

/** A blueprint the policy may choose, with what is known about it. */
export interface BlueprintCandidate {
  readonly descriptor: BlueprintDescriptor;
  /** Graph metadata of its compiled artifact (Urza). @default none: no layer/activation nodes */
  readonly graph?: GraphMetadata;
  /** Its safety data sheet. @default none */
  readonly bsds?: BSDS;
  /** Quarantined by the operator or the risk engine. @default false */
  readonly quarantined?: boolean;
}

/** Input of {@link GraphBuilder.build}. */
export interface GraphBuildInput {
  readonly packet: SystemStatePacket;
  readonly host: HostDescriptor;
  readonly blueprints: readonly BlueprintCandidate[];
}

/** Options of {@link GraphBuilder}. */
export interface GraphBuilderOptions {
  /** Running feature statistics; updated by every build. */
  readonly normaliser: FeatureNormaliser;
  /** Categorical ids (blueprint, layer role, activation kind). */
  readonly registries: EmbeddingRegistries;
  /** Layer nodes per candidate (and default layers). @default 3 */
  readonly maxLayers?: number;
  /** Activation nodes per candidate. @default 1 */
  readonly maxActivations?: number;
  /** Parameter nodes per candidate. @default 1 */
  readonly maxParameters?: number;
}

/** Defaults of {@link GraphBuilderOptions} (the policy's overrides of reference §5). */
export const GRAPH_BUILDER_DEFAULTS = { maxLayers: 3, maxActivations: 1, maxParameters: 1 } as const;

/** Resolved {@link GraphBuilderOptions}. */
export interface ResolvedGraphBuilderOptions {
  readonly normaliser: FeatureNormaliser;
  readonly registries: EmbeddingRegistries;
  readonly maxLayers: number;
  readonly maxActivations: number;
  readonly maxParameters: number;
}

/** Validates `options` and fills defaults; throws `INVALID_ARGUMENT` naming the bad field. */
export function resolveGraphBuilderOptions(options: GraphBuilderOptions): ResolvedGraphBuilderOptions {
  const resolved = {
    normaliser: options.normaliser,
    registries: options.registries,
    maxLayers: options.maxLayers ?? GRAPH_BUILDER_DEFAULTS.maxLayers,
    maxActivations: options.maxActivations ?? GRAPH_BUILDER_DEFAULTS.maxActivations,
    maxParameters: options.maxParameters ?? GRAPH_BUILDER_DEFAULTS.maxParameters,
  };
  for (const field of ['maxLayers', 'maxActivations', 'maxParameters'] as const) {
    const value = resolved[field];
    if (!Number.isSafeInteger(value) || value < 1 || value > 64) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `graph builder ${field} must be an integer in [1, 64], got ${value}`, {
        details: { field },
      });
    }
  }
  return resolved;
}

/**
 * Relation table: internal key, then `src --name--> dst`. The first 21 are the reference's
 * (§5.8), the last 7 relate host sites.
 */
const RELATION_TABLE = [
  ['influences', 'global', 'influences', 'seed'],
  ['reports', 'seed', 'reports', 'global'],
  ['annotates', 'global', 'annotates', 'blueprint'],
  ['annotatedBy', 'blueprint', 'annotated_by', 'global'],
  ['peer', 'seed', 'peer', 'seed'],
  ['operates', 'global', 'operates', 'layer'],
  ['feedback', 'layer', 'feedback', 'global'],
  ['activates', 'layer', 'activates', 'activation'],
  ['affects', 'activation', 'affects', 'layer'],
  ['configures', 'activation', 'configures', 'parameter'],
  ['modulates', 'parameter', 'modulates', 'activation'],
  ['allowed', 'seed', 'allowed', 'parameter'],
  ['associated', 'parameter', 'associated', 'seed'],
  ['composes', 'blueprint', 'composes', 'layer'],
  ['belongsTo', 'layer', 'belongs_to', 'blueprint'],
  ['energizes', 'blueprint', 'energizes', 'activation'],
  ['targets', 'parameter', 'targets', 'blueprint'],
  ['connects', 'layer', 'connects', 'layer'],
  ['monitors', 'seed', 'monitors', 'layer'],
  ['monitoredBy', 'layer', 'monitored_by', 'seed'],
  ['feeds', 'layer', 'feeds', 'activation'],
  ['operatesSite', 'global', 'operates_site', 'site'],
  ['reportsSite', 'site', 'reports_site', 'global'],
  ['occupies', 'seed', 'occupies', 'site'],
  ['hosts', 'site', 'hosts', 'seed'],
  ['fits', 'blueprint', 'fits', 'site'],
  ['accepts', 'site', 'accepts', 'blueprint'],
  ['next', 'site', 'next', 'site'],
] as const satisfies readonly (readonly [string, NodeType, string, NodeType])[];

type RelationKey = (typeof RELATION_TABLE)[number][0];

/** Every relation of a {@link PolicyGraph}, in the fixed order of `PolicyGraph.edges`. */
export const GRAPH_RELATIONS: readonly RelationSpec[] = Object.freeze(
  RELATION_TABLE.map(([, src, name, dst]) => Object.freeze({ src, name, dst } satisfies RelationSpec)),
);

const RELATION_INDEX = Object.fromEntries(RELATION_TABLE.map(([key], i) => [key, i])) as Record<RelationKey, number>;

/**
 * Global node features (16): `[value, present]` pairs for six metrics, then epoch, step,
 * seed count and epoch progress (§5.2 mapped onto the typed packet).
 */
export const GLOBAL_FEATURES = [
  'loss_ewma',
  'loss_ewma_present',
  'validation_loss',
  'validation_loss_present',
  'training_loss',
  'training_loss_present',
  'gradient_norm',
  'gradient_norm_present',
  'samples_per_s',
  'samples_per_s_present',
  'hook_latency_ms',
  'hook_latency_ms_present',
  'epoch',
  'log_step',
  'tanh_seed_count',
  'epoch_progress',
] as const;

/** Seed node features (14). */
export const SEED_FEATURES = [
  'stage',
  'alpha',
  'blend_allowed',
  'tanh_isolation_violations',
  'contribution',
  'contribution_present',
  'gradient_norm',
  'gradient_norm_present',
  'learning_rate',
  'learning_rate_present',
  'age',
  'risk',
  'blueprint_embedding',
  'alpha_progress',
] as const;

/** Site node features (10). */
export const SITE_FEATURES = [
  'kind_dense',
  'kind_conv',
  'log_width',
  'depth_ratio',
  'occupied',
  'occupant_stage',
  'occupant_alpha',
  'occupant_contribution',
  'occupant_contribution_present',
  'headroom',
] as const;

/** Blueprint node features (14). */
export const BLUEPRINT_FEATURES = [
  'embedding',
  'tier',
  'risk',
  'stage',
  'param_log',
  'param_log_present',
  'bsds_present',
  'hazard_band',
  'handling_class',
  'quarantined',
  'approval_required',
  'fits_site_ratio',
  'candidate_score',
  'blend_mode_breadth',
] as const;

/** Layer node features (12). */
export const LAYER_FEATURES = [
  'depth_ratio',
  'descriptor_present',
  'parameter_count',
  'parameter_count_present',
  'rank',
  'log_fan_in',
  'log_fan_out',
  'role_embedding',
  'activation_embedding',
  'parameter_share',
  'float_dtype',
  'kept_fraction',
] as const;

/** Activation node features (8). */
export const ACTIVATION_FEATURES = [
  'kind_embedding',
  'descriptor_present',
  'position',
  'nonlinearity',
  'saturating',
  'piecewise_linear',
  'normalising',
  'share',
] as const;

/** Parameter node features (10). */
export const PARAMETER_FEATURES = [
  'min',
  'max',
  'span',
  'default',
  'value_present',
  'value_position',
  'owner_risk',
  'owner_stage',
  'descriptor_present',
  'integer_range',
] as const;

const STAGE_MAX = SeedLifecycleStage.SEED_STAGE_TERMINATED;
const TIER_MAX = 3;
const HAZARD_MAX = 4;
const HANDLING_MAX = 3;
const BLEND_MODE_COUNT = 4;
/** log2(1 + 4096) ≈ 12: widths and fans up to 4096 map into [0, 1]. */
const LOG_WIDTH_SCALE = 12;
/** Raw inputs are clamped to this magnitude so float32 stays finite. */
const RAW_LIMIT = 1e6;

/** Shape traits of each activation kind Urza names (see urza graph-metadata). */
const ACTIVATION_TRAITS: Readonly<Record<string, readonly [strength: number, saturating: number, piecewise: number, normalising: number]>> =
  {
    linear: [0, 0, 1, 0],
    relu: [0.5, 0, 1, 0],
    gelu: [0.6, 0, 0, 0],
    sigmoid: [0.8, 1, 0, 0],
    tanh: [0.8, 1, 0, 0],
    softmax: [1, 1, 0, 1],
    normalise: [0.3, 0, 0, 1],
  };

interface ParameterDescriptor {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly span: number;
  readonly value: number | undefined;
  readonly real: boolean;
}

interface ActivationDescriptor {
  readonly id: string;
  readonly kind: string;
}

/** Layer/activation/parameter rows of one owner (a candidate, or the defaults). */
interface OwnerGroup {
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

interface CandidatePlan {
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

/** Growable per-relation edge buffer, reused across builds. */
class EdgeBuffer {
  #src = new Int32Array(32);
  #dst = new Int32Array(32);
  #attrs = new Float32Array(32 * EDGE_ATTR_DIM);
  length = 0;

  reset(): void {
    this.length = 0;
  }

  push(src: number, dst: number, a0: number, a1: number, a2: number): void {
    if (this.length === this.#src.length) this.#grow();
    const n = this.length;
    this.#src[n] = src;
    this.#dst[n] = dst;
    const o = n * EDGE_ATTR_DIM;
    this.#attrs[o] = fin(a0);
    this.#attrs[o + 1] = fin(a1);
    this.#attrs[o + 2] = fin(a2);
    this.length = n + 1;
  }

  toEdgeSet(relation: RelationSpec): EdgeSet {
    return {
      relation,
      src: this.#src.slice(0, this.length),
      dst: this.#dst.slice(0, this.length),
      attrs: this.#attrs.slice(0, this.length * EDGE_ATTR_DIM),
    };
  }

  #grow(): void {
    const size = this.#src.length * 2;
    const src = new Int32Array(size);
    src.set(this.#src);
    const dst = new Int32Array(size);
    dst.set(this.#dst);
    const attrs = new Float32Array(size * EDGE_ATTR_DIM);
    attrs.set(this.#attrs);
    this.#src = src;
    this.#dst = dst;
    this.#attrs = attrs;
  }
}

/** Builds {@link PolicyGraph}s; see the module comment. Not safe for concurrent builds. */
export class GraphBuilder {
  readonly options: ResolvedGraphBuilderOptions;
  readonly #edges: readonly EdgeBuffer[] = GRAPH_RELATIONS.map(() => new EdgeBuffer());

  constructor(options: GraphBuilderOptions) {
    this.options = resolveGraphBuilderOptions(options);
  }

  /**
   * Builds the graph of one decision. Updates the normaliser's running stats and may add
   * registry keys. Throws `TAMIYO_GRAPH_INVALID` for empty or duplicate ids, or metadata
   * of another blueprint.
   */
  build(input: GraphBuildInput): PolicyGraph {
    const { packet, host, blueprints } = input;
    const sites = host.sites;
    validateIds(packet, host, blueprints);
    const coverage = new CoverageRecorder();
    for (const buffer of this.#edges) buffer.reset();

    const plans = blueprints.map((candidate) => this.#plan(candidate, sites));
    const groups = this.#groups(plans);
    const layerRows = sumOf(groups, (g) => g.layerCount);
    const activationRows = sumOf(groups, (g) => g.activationCount);
    const parameterRows = sumOf(groups, (g) => g.parameterCount);

    const seeds = packet.seedStates;
    const siteIndex = new Map<string, number>();
    sites.forEach((site, i) => siteIndex.set(site.siteId, i));
    const planIndex = new Map<string, number>();
    plans.forEach((plan, i) => planIndex.set(plan.id, i));

    const global = this.#globalNode(packet, coverage);
    const seedNodes = this.#seedNodes(seeds, siteIndex, coverage);
    const siteNodes = this.#siteNodes(sites, seeds, coverage);
    const blueprintNodes = this.#blueprintNodes(plans, coverage);
    const layerNodes = this.#layerNodes(plans, groups, layerRows, coverage);
    const activationNodes = this.#activationNodes(plans, groups, activationRows, coverage);
    const parameterNodes = this.#parameterNodes(plans, groups, parameterRows, coverage);

    this.#edgesOf(packet, sites, plans, groups, siteIndex, planIndex, coverage);

    return {
      nodes: {
        global,
        seed: seedNodes,
        site: siteNodes,
        blueprint: blueprintNodes,
        layer: layerNodes,
        activation: activationNodes,
        parameter: parameterNodes,
      },
      edges: GRAPH_RELATIONS.map((relation, i) => (this.#edges[i] as EdgeBuffer).toEdgeSet(relation)),
      coverage: coverage.finish(),
    };
  }

  #plan(candidate: BlueprintCandidate, sites: readonly SeedSiteDescriptor[]): CandidatePlan {
    const { descriptor, graph, bsds } = candidate;
    const { maxLayers, maxActivations, maxParameters } = this.options;
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
  #groups(plans: CandidatePlan[]): OwnerGroup[] {
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
      const layerCount = layer === 0 ? this.options.maxLayers : 0;
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

  #globalNode(packet: SystemStatePacket, coverage: CoverageRecorder): NodeSet {
    const n = this.options.normaliser;
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

  #seedNodes(seeds: readonly SeedState[], siteIndex: ReadonlyMap<string, number>, coverage: CoverageRecorder): NodeSet {
    const n = this.options.normaliser;
    const registry = this.options.registries.blueprint;
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

  #siteNodes(sites: readonly SeedSiteDescriptor[], seeds: readonly SeedState[], coverage: CoverageRecorder): NodeSet {
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

  #blueprintNodes(plans: readonly CandidatePlan[], coverage: CoverageRecorder): NodeSet {
    const n = this.options.normaliser;
    const registry = this.options.registries.blueprint;
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

  #layerNodes(plans: readonly CandidatePlan[], groups: readonly OwnerGroup[], rows: number, coverage: CoverageRecorder): NodeSet {
    const n = this.options.normaliser;
    const roles = this.options.registries.layerType;
    const kinds = this.options.registries.activationType;
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

  #activationNodes(plans: readonly CandidatePlan[], groups: readonly OwnerGroup[], rows: number, coverage: CoverageRecorder): NodeSet {
    const kinds = this.options.registries.activationType;
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

  #parameterNodes(plans: readonly CandidatePlan[], groups: readonly OwnerGroup[], rows: number, coverage: CoverageRecorder): NodeSet {
    const n = this.options.normaliser;
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

  #edgesOf(
    packet: SystemStatePacket,
    sites: readonly SeedSiteDescriptor[],
    plans: readonly CandidatePlan[],
    groups: readonly OwnerGroup[],
    siteIndex: ReadonlyMap<string, number>,
    planIndex: ReadonlyMap<string, number>,
    coverage: CoverageRecorder,
  ): void {
    const e = (key: RelationKey): EdgeBuffer => this.#edges[RELATION_INDEX[key]] as EdgeBuffer;
    const seeds = packet.seedStates;
    const defaults = groups.find((g) => g.owner < 0);

    // Global ↔ seed, seed chain.
    seeds.forEach((seed, s) => {
      const stage = stageNorm(seed);
      const risk = fin(seed.riskScore);
      e('influences').push(0, s, 1, stage, risk);
      e('reports').push(s, 0, 1, stage, risk);
      if (s + 1 < seeds.length) e('peer').push(s, s + 1, 0.5, 0, 0);
    });

    // Global ↔ blueprint.
    plans.forEach((plan, b) => {
      e('annotates').push(0, b, 1, plan.stageNorm, plan.risk);
      e('annotatedBy').push(b, 0, 1, plan.stageNorm, plan.risk);
    });

    // Layer / activation / parameter structure, within each owner.
    let realLayerEdges = 0;
    let realActivationEdges = 0;
    let realConfigureEdges = 0;
    let explicitConnects = 0;
    for (const group of groups) {
      const real = group.owner >= 0;
      const L = group.layerCount;
      const A = group.activationCount;
      const P = group.parameterCount;
      for (let l = 0; l < L; l += 1) {
        const row = group.layerStart + l;
        const d = (l + 1) / L;
        e('operates').push(0, row, 1, d, group.risk);
        e('feedback').push(row, 0, 1, d, group.risk);
        if (real) {
          e('composes').push(group.owner, row, group.risk, d, 1);
          e('belongsTo').push(row, group.owner, group.risk, d, 1);
          realLayerEdges += 1;
        }
        for (let j = 0; j < A; j += 1) {
          const a = (j + 1) / A;
          const col = group.activationStart + j;
          e('activates').push(row, col, d, a, 1);
          e('affects').push(col, row, d, a, 1);
          e('feeds').push(row, col, d, a, 1);
          if (real) realActivationEdges += 1;
        }
      }
      for (let j = 0; j < A; j += 1) {
        const a = (j + 1) / A;
        const col = group.activationStart + j;
        if (real) e('energizes').push(group.owner, col, group.risk, a, 1);
        for (let k = 0; k < P; k += 1) {
          const p = (k + 1) / P;
          const prow = group.parameterStart + k;
          e('configures').push(col, prow, a, p, 1);
          e('modulates').push(prow, col, a, p, 1);
          if (real) realConfigureEdges += 1;
        }
      }
      if (real) {
        for (let k = 0; k < P; k += 1) e('targets').push(group.parameterStart + k, group.owner, (k + 1) / P, group.risk, 1);
      }
      const pairs = group.adjacency.length > 0 ? group.adjacency : chain(L);
      if (group.adjacency.length > 0) explicitConnects += pairs.length;
      for (const [s, d] of pairs) e('connects').push(group.layerStart + s, group.layerStart + d, (s + 1) / L, (d + 1) / L, group.risk);
    }

    // Seed → its blueprint's layers (monitors) and parameters (capabilities); defaults as fallback.
    seeds.forEach((seed, s) => {
      const stage = stageNorm(seed);
      const risk = fin(seed.riskScore);
      const planAt = planIndex.get(seed.blueprintId);
      const plan = planAt === undefined ? undefined : plans[planAt];
      const own = plan?.group;
      if (own !== undefined && own.layerCount > 0) {
        for (let l = 0; l < own.layerCount; l += 1) {
          const row = own.layerStart + l;
          e('monitors').push(s, row, stage, risk, plan?.monitorFactor ?? 1);
          e('monitoredBy').push(row, s, stage, risk, plan?.monitorFactor ?? 1);
        }
      } else if (defaults !== undefined && defaults.layerCount > 0) {
        // Reference §5.8 heuristic: the layer at the seed's depth.
        const l = Math.max(0, Math.min(defaults.layerCount - 1, Math.round(seed.layerDepth)));
        const row = defaults.layerStart + l;
        const d = (l + 1) / defaults.layerCount;
        e('monitors').push(s, row, stage, risk, d);
        e('monitoredBy').push(row, s, stage, risk, d);
      }
      if (blendAllowed(seed)) {
        const target =
          own !== undefined && own.parameterCount > 0 ? own : defaults !== undefined && defaults.parameterCount > 0 ? defaults : undefined;
        for (let k = 0; k < (target?.parameterCount ?? 0); k += 1) {
          const prow = (target as OwnerGroup).parameterStart + k;
          e('allowed').push(s, prow, 1, 1, stage);
          e('associated').push(prow, s, 1, 1, stage);
        }
      }
    });

    // Sites: global ↔ site, occupancy, fit, host order.
    sites.forEach((site, i) => {
      const ratio = i / sites.length;
      const occupied = seeds.some((s) => s.siteId === site.siteId && occupies(s)) ? 1 : 0;
      e('operatesSite').push(0, i, 1, ratio, occupied);
      e('reportsSite').push(i, 0, 1, ratio, occupied);
      if (i + 1 < sites.length) e('next').push(i, i + 1, 1, ratio, (i + 1) / sites.length);
    });
    seeds.forEach((seed, s) => {
      const i = siteIndex.get(seed.siteId);
      if (i === undefined) return;
      const attrs = [occupies(seed) ? 1 : 0, stageNorm(seed), clamp01(seed.metrics?.alpha ?? 0)] as const;
      e('occupies').push(s, i, ...attrs);
      e('hosts').push(i, s, ...attrs);
    });
    plans.forEach((plan, b) => {
      plan.fits.forEach((fit, i) => {
        if (fit === 0) return;
        e('fits').push(b, i, fit, plan.risk, plan.tierNorm);
        e('accepts').push(i, b, fit, plan.risk, plan.tierNorm);
      });
    });

    // Edge coverage (§5.8 keys plus two site keys; see the module comment).
    if (seeds.length > 0) {
      coverage.observe('edges.global_influences', e('influences').length > 0);
      coverage.observe('edges.seed_reports', e('reports').length > 0);
      coverage.observe('edges.seed_param_allowed', e('allowed').length > 0);
      coverage.observe('edges.seed_monitors', e('monitors').length > 0);
      coverage.observe('edges.seed_occupies', e('occupies').length > 0);
    }
    const realLayers = realLayerEdges > 0;
    coverage.observe('edges.global_operates', realLayers);
    coverage.observe('edges.layer_feedback', realLayers);
    coverage.observe('edges.blueprint_composes', realLayers);
    coverage.observe('edges.layer_activates', realActivationEdges > 0);
    coverage.observe('edges.layer_feeds', realActivationEdges > 0);
    coverage.observe('edges.activation_configures', realConfigureEdges > 0);
    coverage.observe('edges.parameter_modulates', realConfigureEdges > 0);
    coverage.observe('edges.parameter_targets', e('targets').length > 0);
    coverage.observe('edges.layer_connects', explicitConnects > 0);
    if (sites.length > 0 && plans.length > 0) coverage.observe('edges.blueprint_fits', e('fits').length > 0);
  }
}

function validateIds(packet: SystemStatePacket, host: HostDescriptor, blueprints: readonly BlueprintCandidate[]): void {
  unique(
    packet.seedStates.map((s) => s.seedId),
    'seed_id',
  );
  unique(
    host.sites.map((s) => s.siteId),
    'site_id',
  );
  unique(
    blueprints.map((b) => b.descriptor.blueprintId),
    'blueprint_id',
  );
  for (const { descriptor, graph, bsds } of blueprints) {
    const id = descriptor.blueprintId;
    if (graph !== undefined && graph.blueprintId !== id) {
      throw new EsperError(ErrorCode.TAMIYO_GRAPH_INVALID, `graph metadata of ${graph.blueprintId} given for blueprint ${id}`, {
        details: { field: 'graph', blueprintId: id },
      });
    }
    if (bsds !== undefined && bsds.blueprintId !== '' && bsds.blueprintId !== id) {
      throw new EsperError(ErrorCode.TAMIYO_GRAPH_INVALID, `BSDS of ${bsds.blueprintId} given for blueprint ${id}`, {
        details: { field: 'bsds', blueprintId: id },
      });
    }
  }
}

function unique(ids: readonly string[], field: string): void {
  const seen = new Set<string>();
  for (const [index, id] of ids.entries()) {
    if (id === '' || seen.has(id)) {
      throw new EsperError(ErrorCode.TAMIYO_GRAPH_INVALID, id === '' ? `${field} #${index} is empty` : `${field} '${id}' is duplicated`, {
        details: { field, index },
      });
    }
    seen.add(id);
  }
}

/** Whether `graph` was compiled for exactly `site` (kind and shape). */
function compiledFor(graph: GraphMetadata, site: SeedSiteDescriptor): boolean {
  const compiled = graph.capabilities.compiledSite;
  return (
    compiled.kind === SeedSiteKind[site.kind] &&
    compiled.shape.length === site.shape.length &&
    compiled.shape.every((d, i) => d === site.shape[i])
  );
}

/** A seed holds its site unless the site is empty (DORMANT/UNKNOWN) or freed (CULLED/TERMINATED). */
function occupies(seed: SeedState): boolean {
  switch (seed.stage) {
    case SeedLifecycleStage.SEED_STAGE_UNKNOWN:
    case SeedLifecycleStage.SEED_STAGE_DORMANT:
    case SeedLifecycleStage.SEED_STAGE_CULLED:
    case SeedLifecycleStage.SEED_STAGE_TERMINATED:
      return false;
    default:
      return true;
  }
}

function blendAllowed(seed: SeedState): boolean {
  if (seed.metrics !== undefined) return seed.metrics.blendAllowed;
  return seed.stage >= SeedLifecycleStage.SEED_STAGE_BLENDING && seed.stage <= SeedLifecycleStage.SEED_STAGE_PROBATIONARY;
}

function stageNorm(seed: SeedState): number {
  return clamp01(seed.stage / STAGE_MAX);
}

/** Role of a variable: its last path segment without trailing digits (`expert0/w1` → `w`). */
function layerRole(name: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.replace(/\d+$/, '') || last;
}

function chain(count: number): (readonly [number, number])[] {
  const pairs: [number, number][] = [];
  for (let i = 0; i + 1 < count; i += 1) pairs.push([i, i + 1]);
  return pairs;
}

function inRange(index: number, count: number): boolean {
  return Number.isInteger(index) && index >= 0 && index < count;
}

function sumOf<T>(items: readonly T[], f: (item: T) => number): number {
  let sum = 0;
  for (const item of items) sum += f(item);
  return sum;
}

/** Finite and float32-safe: non-finite → 0, magnitude clamped to {@link RAW_LIMIT}. */
function fin(x: number): number {
  if (!Number.isFinite(x)) return 0;
  return x > RAW_LIMIT ? RAW_LIMIT : x < -RAW_LIMIT ? -RAW_LIMIT : x;
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.max(0, Math.min(1, x)) : 0;
}
