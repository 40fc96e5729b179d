/**
 * Graph builder: turns a `SystemStatePacket`, the host's descriptor and the candidate
 * blueprints into the heterogeneous {@link PolicyGraph} the GNN reads (reference
 * prototype-tamiyo-simic §5). Node features are laid out in `graph-features.ts`, rows per
 * candidate in `graph-plan.ts`, relations in `graph-relations.ts`; the departures from the
 * prototype are listed in docs/architecture.md (Tamiyo).
 */
import { ErrorCode, EsperError, optionChecks } from '../core/index.js';
import type { HostDescriptor, SystemStatePacket } from '../leyline/index.js';
import type { BlueprintCandidate } from './candidates.js';
import { CoverageRecorder } from './coverage.js';
import { activationNodes, blueprintNodes, layerNodes, parameterNodes } from './graph-blueprint-nodes.js';
import { buildEdges, EdgeBuffer } from './graph-edges.js';
import { sumOf } from './graph-features.js';
import { assignGroups, planCandidate } from './graph-plan.js';
import { GRAPH_RELATIONS } from './graph-relations.js';
import { globalNode, seedNodes, siteNodes, type NodeSources } from './graph-state-nodes.js';
import type { PolicyGraph } from './graph-types.js';
import { FeatureNormaliser } from './normaliser.js';
import { EmbeddingRegistries } from './registries.js';

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
  const check = optionChecks('GraphBuilderOptions');
  for (const field of ['maxLayers', 'maxActivations', 'maxParameters'] as const) check.integer(field, resolved[field], { min: 1, max: 64 });
  return resolved;
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
    const sources: NodeSources = this.options;

    const plans = blueprints.map((candidate) => planCandidate(this.options, candidate, sites));
    const groups = assignGroups(this.options.maxLayers, plans);
    const layerRows = sumOf(groups, (g) => g.layerCount);
    const activationRows = sumOf(groups, (g) => g.activationCount);
    const parameterRows = sumOf(groups, (g) => g.parameterCount);

    const seeds = packet.seedStates;
    const siteIndex = new Map<string, number>();
    sites.forEach((site, i) => siteIndex.set(site.siteId, i));
    const planIndex = new Map<string, number>();
    plans.forEach((plan, i) => planIndex.set(plan.id, i));

    const global = globalNode(sources, packet, coverage);
    const seed = seedNodes(sources, seeds, siteIndex, coverage);
    const site = siteNodes(sites, seeds, coverage);
    const blueprint = blueprintNodes(sources, plans, coverage);
    const layer = layerNodes(sources, plans, groups, layerRows, coverage);
    const activation = activationNodes(sources, plans, groups, activationRows, coverage);
    const parameter = parameterNodes(sources, plans, groups, parameterRows, coverage);

    buildEdges(this.#edges, packet, sites, plans, groups, siteIndex, planIndex, coverage);

    return {
      nodes: { global, seed, site, blueprint, layer, activation, parameter },
      edges: GRAPH_RELATIONS.map((relation, i) => (this.#edges[i] as EdgeBuffer).toEdgeSet(relation)),
      coverage: coverage.finish(),
    };
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
    const blank = id.trim().length === 0;
    if (blank || seen.has(id)) {
      throw new EsperError(ErrorCode.TAMIYO_GRAPH_INVALID, blank ? `${field} #${index} is blank` : `${field} '${id}' is duplicated`, {
        details: { field, index },
      });
    }
    seen.add(id);
  }
}

/**
 * A builder of one run's own: a fresh normaliser (its running statistics start from the
 * priors) and in-memory registries. What a learned or sampling GNN policy builds its graphs
 * with, and so what anything that must see the graphs such a policy sees uses too.
 */
export function runGraphBuilder(): GraphBuilder {
  return new GraphBuilder({ normaliser: new FeatureNormaliser(), registries: EmbeddingRegistries.inMemory() });
}
