/**
 * The GNN's layers over one `[nodes, width]` tensor (type-major rows, global first):
 * per-type encoders, then fused heterogeneous SAGE and GAT layers — a few matmuls per node
 * type, one gather and one `unsortedSegmentSum` over the edges of all relations.
 */
import { tf } from '../tensor/index.js';
import type { GnnConfig } from './gnn-config.js';
import type { ForwardPlan, RelationLayout } from './gnn-plan.js';
import { NODE_TYPES, type NodeType, type PolicyGraph } from './graph-types.js';

/** LayerNorm epsilon of the encoders (PyTorch default). */
export const LAYER_NORM_EPSILON = 1e-5;
/** Negative slope of the GAT attention LeakyReLU (GATConv default). */
export const LEAKY_RELU_SLOPE = 0.2;

/** What a layer reads: the config, its relation layout and the weights by logical name. */
export interface GnnWeights {
  readonly config: GnnConfig;
  readonly layout: RelationLayout;
  v(logical: string): tf.Variable;
}

/** Per-forward index tensors (created inside the forward's tidy). */
export interface EdgeTensors {
  readonly srcRow: tf.Tensor1D;
  readonly dstNode: tf.Tensor1D;
  readonly dstSegment: tf.Tensor1D;
  readonly edgeSelect: tf.Tensor1D;
  readonly sageWeight: tf.Tensor2D;
  readonly relationScale: tf.Tensor2D;
  readonly attrs: tf.Tensor2D;
}

export interface LayerContext {
  readonly plan: ForwardPlan;
  /** Undefined when the graph has no edges at all. */
  readonly edges: EdgeTensors | undefined;
  readonly nodeType: tf.Tensor1D;
}

/** Encoders: per type Linear, then GELU and a per-type affine LayerNorm on all rows (§7.2 item 1). */
export function encode(w: GnnWeights, graph: PolicyGraph, ctx: LayerContext): tf.Tensor2D {
  const { plan } = ctx;
  const parts: tf.Tensor2D[] = [];
  for (const type of NODE_TYPES) {
    const rows = plan.counts[type];
    if (rows === 0) continue;
    const x = tf.tensor2d(graph.nodes[type].features, [rows, w.config.nodeDims[type]]);
    parts.push(tf.add(tf.matMul(x, w.v(`encoder/${type}/w`)), w.v(`encoder/${type}/b`)));
  }
  const y = gelu(concatRows(parts));
  const { mean, variance } = tf.moments(y, -1, true);
  const normed = tf.mul(tf.sub(y, mean), tf.rsqrt(tf.add(variance, LAYER_NORM_EPSILON)));
  const gamma = tf.gather(tf.stack(NODE_TYPES.map((t) => w.v(`encoder/${t}/ln_gamma`))), ctx.nodeType);
  const beta = tf.gather(tf.stack(NODE_TYPES.map((t) => w.v(`encoder/${t}/ln_beta`))), ctx.nodeType);
  return tf.add(tf.mul(normed, gamma), beta);
}

/** Rows of `h` of one type. */
function rows(h: tf.Tensor2D, type: NodeType, plan: ForwardPlan): tf.Tensor2D {
  return tf.slice(h, [plan.offsets[type], 0], [plan.counts[type], h.shape[1]]);
}

/**
 * SAGE (PyG 2.6 SAGEConv, mean aggregation) with the relation mean per dst type:
 * `(1/R)·Σ_r (W_l^r·mean_{j∈N_r(i)} x_j + b^r + W_r^r·x_i)`; a relation without edges
 * still contributes `W_r^r·x_i + b^r`.
 */
export function sage(w: GnnWeights, layer: number, h: tf.Tensor2D, ctx: LayerContext): tf.Tensor2D {
  const { plan, edges } = ctx;
  const { hidden } = w.config;
  const { bySrc } = w.layout;
  const rootParts: tf.Tensor2D[] = [];
  const tables: tf.Tensor2D[] = [];
  for (const type of NODE_TYPES) {
    const n = plan.counts[type];
    if (n === 0) continue;
    const x = rows(h, type, plan);
    rootParts.push(tf.add(tf.matMul(x, w.v(`sage${layer}/root/${type}`)), w.v(`sage${layer}/bias/${type}`)));
    const r = bySrc[type].length;
    // W_l·x_j for every (node, relation from this type); mean_j W_l x_j = W_l mean_j x_j.
    if (r > 0 && edges !== undefined) tables.push(tf.reshape(tf.matMul(x, w.v(`sage${layer}/neigh/${type}`)), [n * r, hidden]));
  }
  const root = concatRows(rootParts);
  if (edges === undefined) return root;
  const messages = tf.mul(tf.gather(concatRows(tables), edges.srcRow), edges.sageWeight);
  return tf.add(root, tf.unsortedSegmentSum(messages, edges.dstNode, plan.totalNodes));
}

/**
 * GAT (PyG GATConv, bipartite, `concat=False`, no self loops, edge_dim 3) with the
 * relation mean per dst type: per relation `Σ_j α_ij·W_src x_j` averaged over heads,
 * where α is the softmax over i's incoming edges of that relation of
 * `LeakyReLU(a_src·W_src x_j + a_dst·W_dst x_i + a_edge·W_edge e_ij)`, plus the bias;
 * a node without incoming edges gets just the bias. The dst and edge attention terms use
 * the folded `Wᵀa` weights (see the class comment).
 */
export function gat(w: GnnWeights, layer: number, h: tf.Tensor2D, ctx: LayerContext): tf.Tensor2D {
  const { plan, edges } = ctx;
  const { heads, gatHidden } = w.config;
  const { bySrc, byDst } = w.layout;
  const width = heads * gatHidden;
  const bias = tf.gather(tf.stack(NODE_TYPES.map((t) => w.v(`gat${layer}/bias/${t}`))), ctx.nodeType) as tf.Tensor2D;
  if (edges === undefined) return bias;
  const values: tf.Tensor2D[] = [];
  const srcScores: tf.Tensor2D[] = [];
  const dstScores: tf.Tensor2D[] = [];
  for (const type of NODE_TYPES) {
    const n = plan.counts[type];
    if (n === 0) continue;
    const x = rows(h, type, plan);
    const rSrc = bySrc[type].length;
    if (rSrc > 0) {
      const projected = tf.matMul(x, w.v(`gat${layer}/src/${type}`)); // [n, R_src·heads·C]
      values.push(tf.reshape(projected, [n * rSrc, width]));
      const perHead = tf.mul(tf.reshape(projected, [n, rSrc, heads, gatHidden]), w.v(`gat${layer}/att_src/${type}`));
      srcScores.push(tf.reshape(tf.sum(perHead, -1), [n * rSrc, heads]));
    }
    dstScores.push(tf.reshape(tf.matMul(x, w.v(`gat${layer}/att_dst/${type}`)), [n * byDst[type].length, heads]));
  }
  const relationCount = w.config.relations.length;
  const edgeScores = tf.gather(
    tf.reshape(tf.matMul(edges.attrs, w.v(`gat${layer}/att_edge`)), [plan.edges * relationCount, heads]),
    edges.edgeSelect,
  );
  const srcTable = concatRows(values);
  const raw = tf.add(
    tf.add(tf.gather(concatRows(srcScores), edges.srcRow), tf.gather(concatRows(dstScores), edges.dstSegment)),
    edgeScores,
  );
  const logits = tf.leakyRelu(raw, LEAKY_RELU_SLOPE) as tf.Tensor2D;
  // Softmax per (dst node, relation) segment, shifted by the segment max (a constant, so
  // gradients are unchanged); tfjs has no segment max, the host computes it.
  const shift = segmentMaxPerEdge(logits.dataSync() as Float32Array, plan.dstSegment, plan.dstTableRows, heads);
  const ex = tf.exp(tf.sub(logits, tf.tensor2d(shift, [plan.edges, heads])));
  const denominator = tf.gather(tf.unsortedSegmentSum(ex, edges.dstSegment, plan.dstTableRows), edges.dstSegment);
  const alpha = tf.mul(tf.div(ex, denominator), edges.relationScale); // [E, heads], relation mean folded in
  const gathered = tf.reshape(tf.gather(srcTable, edges.srcRow), [plan.edges, heads, gatHidden]);
  const messages = tf.mean(tf.mul(gathered, tf.expandDims(alpha, 2)), 1) as tf.Tensor2D; // mean over heads
  return tf.add(tf.unsortedSegmentSum(messages, edges.dstNode, plan.totalNodes), bias);
}

/** Exact GELU, `0.5·x·(1 + erf(x/√2))` (reference §7.2 item 1). */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** `y + x` when the widths match (§7.2 item 3), else `y`. */
export function residual(y: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor2D {
  return y.shape[1] === x.shape[1] ? tf.add(y, x) : y;
}

export function concatRows(parts: tf.Tensor2D[]): tf.Tensor2D {
  return parts.length === 1 ? (parts[0] as tf.Tensor2D) : tf.concat(parts, 0);
}

/** Per edge and head, the max logit of the edge's segment (softmax stabiliser). */
function segmentMaxPerEdge(logits: Float32Array, segments: Int32Array, numSegments: number, heads: number): Float32Array {
  const max = new Float32Array(numSegments * heads).fill(-Infinity);
  for (let e = 0; e < segments.length; e += 1) {
    const base = (segments[e] as number) * heads;
    for (let k = 0; k < heads; k += 1) {
      const v = logits[e * heads + k] as number;
      if (v > (max[base + k] as number)) max[base + k] = v;
    }
  }
  const out = new Float32Array(segments.length * heads);
  for (let e = 0; e < segments.length; e += 1) {
    const base = (segments[e] as number) * heads;
    for (let k = 0; k < heads; k += 1) {
      const m = max[base + k] as number;
      // A non-finite logit (diverged weights) must not turn the shift into NaN for the rest.
      out[e * heads + k] = Number.isFinite(m) ? m : 0;
    }
  }
  return out;
}
