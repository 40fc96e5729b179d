/** The GNN's per-config relation layout and its per-forward index plan over a policy graph. */
import { ErrorCode, EsperError } from '../core/index.js';
import { relationKey, type GnnConfig } from './gnn-config.js';
import { EDGE_ATTR_DIM, NODE_TYPES, type EdgeSet, type NodeType, type PolicyGraph, type RelationSpec } from './graph-types.js';

/** Which weight block each relation uses (fixed by the config's relation order). */
export interface RelationLayout {
  /** Relation indices (config order) whose src / dst is each type. */
  readonly bySrc: Readonly<Record<NodeType, readonly number[]>>;
  readonly byDst: Readonly<Record<NodeType, readonly number[]>>;
  /** Per relation: its position within its src type's block and its dst type's block. */
  readonly srcSlot: readonly number[];
  readonly dstSlot: readonly number[];
}

/** Per-forward index plan over the type-major node order (global first). */
export interface ForwardPlan {
  readonly counts: Readonly<Record<NodeType, number>>;
  readonly offsets: Readonly<Record<NodeType, number>>;
  readonly totalNodes: number;
  /** NODE_TYPES index of every node row. */
  readonly nodeType: Int32Array;
  /** Row offset of each type in the per-(node, src relation) tables. */
  readonly srcTableOffsets: Readonly<Record<NodeType, number>>;
  /** Rows of the per-(node, src relation) tables. */
  readonly srcTableRows: number;
  /** Row offset of each type in the per-(node, dst relation) table. */
  readonly dstTableOffsets: Readonly<Record<NodeType, number>>;
  /** Rows of the per-(node, dst relation) table: the GAT softmax segments. */
  readonly dstTableRows: number;
  readonly edges: number;
  /** Per edge: row `(src node, relation)` in the src tables. */
  readonly srcRow: Int32Array;
  /** Per edge: global row of the dst node. */
  readonly dstNode: Int32Array;
  /** Per edge: row `(dst node, relation)` in the dst table (softmax segment). */
  readonly dstSegment: Int32Array;
  /** Per edge: `edge·R + relation`, selecting its relation's edge-attention block. */
  readonly edgeSelect: Int32Array;
  /** Per edge: `1 / (in-degree within its relation · relations into its dst type)`. */
  readonly sageWeight: Float32Array;
  /** Per edge: `1 / relations into its dst type` (the relation mean). */
  readonly relationScale: Float32Array;
  /** `[edges, EDGE_ATTR_DIM]`. */
  readonly attrs: Float32Array;
}

export type TypeRecord<T> = Record<NodeType, T>;

export function perType<T>(fn: (type: NodeType, index: number) => T): TypeRecord<T> {
  const out = {} as TypeRecord<T>;
  NODE_TYPES.forEach((type, index) => {
    out[type] = fn(type, index);
  });
  return out;
}

/** Which weight block each relation of `relations` uses. */
export function relationLayout(relations: readonly RelationSpec[]): RelationLayout {
  const bySrc = perType<number[]>(() => []);
  const byDst = perType<number[]>(() => []);
  const srcSlot: number[] = [];
  const dstSlot: number[] = [];
  relations.forEach((r, i) => {
    srcSlot.push(bySrc[r.src].length);
    bySrc[r.src].push(i);
    dstSlot.push(byDst[r.dst].length);
    byDst[r.dst].push(i);
  });
  return { bySrc, byDst, srcSlot, dstSlot };
}

/**
 * Checks `graph` against the config and lays out its edges for the fused layers. `graphs`
 * is how many graphs `graph` unites (`gnn-batch.ts`): one global node each.
 */
export function planForward(graph: PolicyGraph, config: GnnConfig, layout: RelationLayout, graphs = 1): ForwardPlan {
  const invalid = (message: string, details: Record<string, string | number> = {}): EsperError =>
    new EsperError(ErrorCode.TAMIYO_GRAPH_INVALID, `policy graph: ${message}`, { details });
  const { relations } = config;
  const { bySrc, byDst, srcSlot, dstSlot } = layout;
  if (graph === null || typeof graph !== 'object' || graph.nodes === undefined || !Array.isArray(graph.edges)) {
    throw invalid('not a policy graph');
  }
  const counts = perType((type) => {
    const set = graph.nodes[type];
    if (set === undefined) throw invalid(`node type '${type}' is missing`, { type });
    const n = set.ids.length;
    const dim = config.nodeDims[type];
    if (set.features.length !== n * dim)
      throw invalid(`'${type}' features have ${set.features.length} values, expected ${n}×${dim}`, { type });
    for (let i = 0; i < set.features.length; i += 1) {
      if (!Number.isFinite(set.features[i])) throw invalid(`'${type}' feature ${i} is not finite`, { type, index: i });
    }
    return n;
  });
  if (counts.global !== graphs)
    throw invalid(`expected ${graphs === 1 ? 'exactly one global node' : `${graphs} global nodes`}, got ${counts.global}`, {
      global: counts.global,
    });
  let total = 0;
  let srcRows = 0;
  let dstRows = 0;
  const offsets = perType((type) => (total += counts[type]) - counts[type]);
  const srcTableOffsets = perType((type) => (srcRows += counts[type] * bySrc[type].length) - counts[type] * bySrc[type].length);
  const dstTableOffsets = perType((type) => (dstRows += counts[type] * byDst[type].length) - counts[type] * byDst[type].length);
  const nodeType = new Int32Array(total);
  NODE_TYPES.forEach((type, index) => nodeType.fill(index, offsets[type], offsets[type] + counts[type]));

  const indexOf = new Map(relations.map((r, i) => [relationKey(r), i]));
  const sets: (EdgeSet | undefined)[] = relations.map(() => undefined);
  let edgeTotal = 0;
  for (const set of graph.edges as readonly EdgeSet[]) {
    const key = relationKey(set.relation);
    const r = indexOf.get(key);
    if (r === undefined) throw invalid(`unknown relation '${key}'`, { relation: key });
    if (sets[r] !== undefined) throw invalid(`relation '${key}' appears twice`, { relation: key });
    const edges = set.src.length;
    if (set.dst.length !== edges || set.attrs.length !== edges * EDGE_ATTR_DIM) {
      throw invalid(`relation '${key}' has mismatched src/dst/attrs lengths`, { relation: key });
    }
    const nSrc = counts[set.relation.src];
    const nDst = counts[set.relation.dst];
    for (let e = 0; e < edges; e += 1) {
      const s = set.src[e] as number;
      const d = set.dst[e] as number;
      if (!(s >= 0 && s < nSrc && d >= 0 && d < nDst))
        throw invalid(`relation '${key}' edge ${e} is out of range`, { relation: key, edge: e });
    }
    for (let i = 0; i < set.attrs.length; i += 1) {
      if (!Number.isFinite(set.attrs[i])) throw invalid(`relation '${key}' attribute ${i} is not finite`, { relation: key });
    }
    sets[r] = set;
    edgeTotal += edges;
  }
  const srcRow = new Int32Array(edgeTotal);
  const dstNode = new Int32Array(edgeTotal);
  const dstSegment = new Int32Array(edgeTotal);
  const edgeSelect = new Int32Array(edgeTotal);
  const sageWeight = new Float32Array(edgeTotal);
  const relationScale = new Float32Array(edgeTotal);
  const attrs = new Float32Array(edgeTotal * EDGE_ATTR_DIM);
  let e = 0;
  relations.forEach((relation, r) => {
    const set = sets[r];
    if (set === undefined) throw invalid(`relation '${relationKey(relation)}' is missing`, { relation: relationKey(relation) });
    const { src, dst } = relation;
    const rSrc = bySrc[src].length;
    const rDst = byDst[dst].length;
    const degree = new Int32Array(counts[dst]);
    for (const d of set.dst) degree[d] = (degree[d] as number) + 1;
    attrs.set(set.attrs, e * EDGE_ATTR_DIM);
    for (let i = 0; i < set.src.length; i += 1, e += 1) {
      const s = set.src[i] as number;
      const d = set.dst[i] as number;
      srcRow[e] = srcTableOffsets[src] + s * rSrc + (srcSlot[r] as number);
      dstNode[e] = offsets[dst] + d;
      dstSegment[e] = dstTableOffsets[dst] + d * rDst + (dstSlot[r] as number);
      edgeSelect[e] = e * relations.length + r;
      sageWeight[e] = 1 / ((degree[d] as number) * rDst);
      relationScale[e] = 1 / rDst;
    }
  });
  return {
    counts,
    offsets,
    totalNodes: total,
    nodeType,
    srcTableOffsets,
    srcTableRows: srcRows,
    dstTableOffsets,
    dstTableRows: dstRows,
    edges: edgeTotal,
    srcRow,
    dstNode,
    dstSegment,
    edgeSelect,
    sageWeight,
    relationScale,
    attrs,
  };
}
