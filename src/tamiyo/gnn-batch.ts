/**
 * Many policy graphs as one: the disjoint union a batched forward pass reads
 * (`TamiyoGnn.applyBatch`). Each node type's rows are the graphs' rows in graph order, every
 * edge is shifted to its graph's rows, so message passing never crosses graphs and graph
 * `g`'s global node is global row `g`. What a batch computes for a graph is what a forward
 * pass of that graph alone computes (test `gnn-batch.test.ts`).
 */
import { ErrorCode, EsperError } from '../core/index.js';
import { EDGE_ATTR_DIM, NODE_TYPES, type EdgeSet, type NodeSet, type NodeType, type PolicyGraph } from './graph-types.js';

/** A union of graphs and where each graph's nodes are in it. */
export interface GraphBatch {
  readonly graph: PolicyGraph;
  /** How many graphs it unites. */
  readonly size: number;
  /** Per node type, the graph each of its rows belongs to. */
  readonly graphOf: Readonly<Record<NodeType, Int32Array>>;
  /** Per node type, the first row of each graph (length `size + 1`: the last is the row count). */
  readonly rowStart: Readonly<Record<NodeType, Int32Array>>;
}

/** Unites `graphs` (at least one; all built over the same relation list). */
export function batchGraphs(graphs: readonly PolicyGraph[]): GraphBatch {
  const first = graphs[0];
  if (first === undefined) throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'batchGraphs: no graphs to batch');
  const rowStart = {} as Record<NodeType, Int32Array>;
  const graphOf = {} as Record<NodeType, Int32Array>;
  const nodes = {} as Record<NodeType, NodeSet>;
  for (const type of NODE_TYPES) {
    const starts = new Int32Array(graphs.length + 1);
    graphs.forEach((g, i) => {
      starts[i + 1] = (starts[i] as number) + g.nodes[type].ids.length;
    });
    const total = starts[graphs.length] as number;
    const owner = new Int32Array(total);
    graphs.forEach((_, i) => owner.fill(i, starts[i], starts[i + 1]));
    const width = total === 0 ? 0 : first.nodes[type].features.length / Math.max(1, first.nodes[type].ids.length);
    const features = new Float32Array(graphs.reduce((n, g) => n + g.nodes[type].features.length, 0));
    const ids: string[] = [];
    let offset = 0;
    for (const g of graphs) {
      features.set(g.nodes[type].features, offset);
      offset += g.nodes[type].features.length;
      ids.push(...g.nodes[type].ids);
    }
    if (width > 0 && features.length !== total * width) {
      throw new EsperError(ErrorCode.TAMIYO_GRAPH_INVALID, `batchGraphs: '${type}' feature widths differ between graphs`, {
        details: { type },
      });
    }
    rowStart[type] = starts;
    graphOf[type] = owner;
    nodes[type] = { ids, features };
  }
  const edges: EdgeSet[] = first.edges.map((set, r) => {
    const parts = graphs.map((g) => g.edges[r]);
    const count = parts.reduce((n, p) => n + (p?.src.length ?? 0), 0);
    const src = new Int32Array(count);
    const dst = new Int32Array(count);
    const attrs = new Float32Array(count * EDGE_ATTR_DIM);
    let e = 0;
    parts.forEach((part, i) => {
      if (
        part === undefined ||
        part.relation.name !== set.relation.name ||
        part.relation.src !== set.relation.src ||
        part.relation.dst !== set.relation.dst
      ) {
        throw new EsperError(ErrorCode.TAMIYO_GRAPH_INVALID, `batchGraphs: graph ${i} does not list relation ${r} as graph 0 does`, {
          details: { graph: i, relation: r },
        });
      }
      const srcShift = rowStart[set.relation.src][i] as number;
      const dstShift = rowStart[set.relation.dst][i] as number;
      for (let k = 0; k < part.src.length; k += 1, e += 1) {
        src[e] = (part.src[k] as number) + srcShift;
        dst[e] = (part.dst[k] as number) + dstShift;
      }
      attrs.set(part.attrs, (e - part.src.length) * EDGE_ATTR_DIM);
    });
    return { relation: set.relation, src, dst, attrs };
  });
  return { graph: { nodes, edges, coverage: first.coverage }, size: graphs.length, graphOf, rowStart };
}
