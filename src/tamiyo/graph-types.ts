/**
 * The heterogeneous graph Tamiyo's GNN reads (reference prototype-tamiyo-simic §5, §7):
 * typed node sets with dense float32 features and typed relations between them, built by
 * `graph-builder.ts`. Besides the prototype's six node types there is one `site` node per
 * host seed site and one `blueprint` node per candidate.
 */
/** Node types, in the order every per-type structure lists them. */
export const NODE_TYPES = ['global', 'seed', 'site', 'blueprint', 'layer', 'activation', 'parameter'] as const;

/** One of {@link NODE_TYPES}. */
export type NodeType = (typeof NODE_TYPES)[number];

/** Feature width of each node type (reference §7.1; `site` is ours). */
export const NODE_FEATURE_DIMS: Readonly<Record<NodeType, number>> = Object.freeze({
  global: 16,
  seed: 14,
  site: 10,
  blueprint: 14,
  layer: 12,
  activation: 8,
  parameter: 10,
});

/** Width of every edge's attribute row (reference §5.8). */
export const EDGE_ATTR_DIM = 3;

/** A typed relation `src --name--> dst`. */
export interface RelationSpec {
  readonly name: string;
  readonly src: NodeType;
  readonly dst: NodeType;
}

/** One node type's nodes. */
export interface NodeSet {
  /** Stable node ids, one per node (row). */
  readonly ids: readonly string[];
  /** Row-major `[ids.length, NODE_FEATURE_DIMS[type]]`, every value finite. */
  readonly features: Float32Array;
}

/** One relation's edges. */
export interface EdgeSet {
  readonly relation: RelationSpec;
  /** Source node rows (into `nodes[relation.src]`). */
  readonly src: Int32Array;
  /** Destination node rows (into `nodes[relation.dst]`), same length as `src`. */
  readonly dst: Int32Array;
  /** Row-major `[src.length, EDGE_ATTR_DIM]`. */
  readonly attrs: Float32Array;
}

/** Feature coverage of one graph (reference §5.9): fraction of expected inputs present. */
export interface FeatureCoverage {
  /** Present/total per observed key (`node.seed.stage`, `edges.layer_connects`, ...). */
  readonly byKey: ReadonlyMap<string, number>;
  /** Count-weighted ratio per group (`node.seed`, `edges.seed_monitors`, ...); empty groups omitted. */
  readonly byGroup: ReadonlyMap<string, number>;
  /** Count-weighted ratio over every group. */
  readonly average: number;
}

/** The policy's input. */
export interface PolicyGraph {
  /** Every node type is present; a type may have zero nodes except `global` (exactly one). */
  readonly nodes: Readonly<Record<NodeType, NodeSet>>;
  /** One entry per relation of the builder's relation list, empty relations included. */
  readonly edges: readonly EdgeSet[];
  readonly coverage: FeatureCoverage;
}
