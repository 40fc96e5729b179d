/**
 * The GNN's inference pass: what `TamiyoGnn.forward` runs for a decision. It computes the
 * function of the tensor pass in `gnn-layers.ts` (which Simic differentiates; it stays the
 * definition), but arranged for a decision's latency. At policy-graph sizes that latency is
 * kernel-call overhead, not arithmetic: the tensor pass makes ~370 kernel calls a forward
 * at any graph size (1.9 ms at 10 nodes, 2.9 ms at 50 on an idle machine), and the garbage
 * its tensor objects leave stretches the tail. Here:
 * - each layer's weights of one node type sit side by side in one matrix (SAGE root and
 *   neighbour weights; GAT source projection and the folded destination attention), built
 *   once per weights version, so a layer costs one matrix product per node type;
 * - a product large enough to pay for a kernel call runs on the tensor backend, a small one
 *   (the global node's, the encoders' at small graphs) in JS;
 * - everything else — biases, GELU, LayerNorm, the SAGE neighbour mean, the GAT attention
 *   softmax and messages over the edges, the heads — runs in JS on the host, in float64.
 * The outputs equal the tensor pass's to float32 rounding (test `gnn-inference.test.ts`
 * holds them within 1e-5 relative). The weights are read from the variables once per
 * version: every update (`assign`, which optimizers and `loadPolicy` use) gives a variable
 * a new `dataId`, and a forward that sees one rebuilds the cache.
 */
import { ErrorCode, EsperError } from '../core/index.js';
import { tf } from '../tensor/index.js';
import type { GnnConfig } from './gnn-config.js';
import { LAYER_NORM_EPSILON, LEAKY_RELU_SLOPE } from './gnn-layers.js';
import type { GnnOutput } from './gnn-output.js';
import type { ForwardPlan, RelationLayout } from './gnn-plan.js';
import { EDGE_ATTR_DIM, NODE_TYPES, type PolicyGraph } from './graph-types.js';
import { axpy, dot, gelu } from './gnn-inference-math.js';

/**
 * Largest product (rows · in · out multiply-adds) computed in JS rather than by a kernel
 * call: around this size a tensor-backend round trip (upload, matMul, read back: ~4 µs
 * over the product itself, which XNNPACK computes ~15× faster than a JS loop) and a JS
 * loop cost the same.
 */
export const JS_PRODUCT_MAX_MACS = 4_096;

/** One weight matrix `[inWidth, width]`: the variable (for backend products) and a copy of its values (for JS ones). */
interface Block {
  readonly width: number;
  readonly variable: tf.Variable;
  readonly values: Float32Array;
}

/**
 * One node type's weights of one layer side by side, `[inWidth, width]`: the blocks' columns
 * in order (SAGE root then neighbour weights; GAT source projection then attention).
 */
interface Projection {
  readonly inWidth: number;
  readonly width: number;
  readonly blocks: readonly Block[];
}

/** Per node type (NODE_TYPES order). */
type PerType<T> = readonly T[];

interface EncoderWeights {
  readonly projection: PerType<Projection>;
  readonly bias: PerType<Float32Array>;
  readonly gamma: PerType<Float32Array>;
  readonly beta: PerType<Float32Array>;
}

interface SageWeights {
  /** `[root | neigh of each src relation]`: `[hidden, (1 + R_src)·hidden]`. */
  readonly projection: PerType<Projection>;
  readonly bias: PerType<Float32Array>;
}

interface GatWeights {
  /** `[src of each src relation | att_dst]`: `[in, R_src·heads·gatHidden + R_dst·heads]`. */
  readonly projection: PerType<Projection>;
  /** `[R_src, heads, gatHidden]`; empty when the type is no relation's source. */
  readonly attSrc: PerType<Float32Array>;
  readonly bias: PerType<Float32Array>;
  /** `[EDGE_ATTR_DIM, R·heads]`. */
  readonly attEdge: Float32Array;
}

/** The weights of one version, read from the variables. */
interface Snapshot {
  /** The variables' `dataId`s when read (creation order). */
  readonly dataIds: readonly object[];
  readonly encoder: EncoderWeights;
  readonly sage: readonly SageWeights[];
  readonly gat: readonly GatWeights[];
  /** `head/*` weights by logical name. */
  readonly head: ReadonlyMap<string, Float32Array>;
}

/** Where one layer's per-type products are: all types' rows in one buffer. */
interface Products {
  readonly values: Float32Array;
  /** Per type: offset of its first row in `values`. */
  readonly offset: Int32Array;
}

/** The inference pass of one GNN over its variables. */
export class GnnInference {
  readonly #config: GnnConfig;
  readonly #layout: RelationLayout;
  readonly #variables: () => ReadonlyMap<string, tf.Variable>;
  #snapshot: Snapshot | undefined;
  readonly #scratch = new Scratch();

  constructor(config: GnnConfig, layout: RelationLayout, variables: () => ReadonlyMap<string, tf.Variable>) {
    this.#config = config;
    this.#layout = layout;
    this.#variables = variables;
  }

  /** One forward pass of `graph` (already checked and laid out as `plan`, one graph). */
  run(graph: PolicyGraph, plan: ForwardPlan): GnnOutput {
    const w = this.#current();
    const { hidden, gatHidden } = this.#config;
    // Node states alternate between two work buffers, layer by layer.
    let h = this.#encode(w.encoder, graph, plan, 'h0');
    h = this.#sage(w.sage[0] as SageWeights, h, plan, 'h1');
    h = this.#sage(w.sage[1] as SageWeights, h, plan, 'h0');
    h = this.#gat(w.gat[0] as GatWeights, h, hidden, plan, 'h1');
    h = this.#gat(w.gat[1] as GatWeights, h, gatHidden, plan, 'h0');
    return this.#heads(w.head, h, plan);
  }

  /** Drops the cached weights. Idempotent. */
  dispose(): void {
    this.#snapshot = undefined;
  }

  #current(): Snapshot {
    const variables = this.#variables();
    const cached = this.#snapshot;
    if (cached !== undefined && cached.dataIds.length === variables.size) {
      let i = 0;
      let same = true;
      for (const v of variables.values()) {
        if (v.dataId !== cached.dataIds[i]) {
          same = false;
          break;
        }
        i += 1;
      }
      if (same) return cached;
    }
    this.dispose();
    this.#snapshot = readSnapshot(this.#config, this.#layout, variables);
    return this.#snapshot;
  }

  /** Encoders: per type Linear, GELU, per-type affine LayerNorm (gnn-layers `encode`). */
  #encode(w: EncoderWeights, graph: PolicyGraph, plan: ForwardPlan, outKey: string): Float32Array {
    const { hidden } = this.#config;
    const out = this.#scratch.f32(outKey, plan.totalNodes * hidden);
    const row = this.#scratch.f64('row', hidden);
    NODE_TYPES.forEach((type, t) => {
      const n = plan.counts[type];
      if (n === 0) return;
      const projection = w.projection[t] as Projection;
      const y = this.#scratch.f32('encoded', n * hidden);
      project(graph.nodes[type].features, n, projection, y, 0);
      const bias = w.bias[t] as Float32Array;
      const gamma = w.gamma[t] as Float32Array;
      const beta = w.beta[t] as Float32Array;
      for (let i = 0; i < n; i += 1) {
        let mean = 0;
        for (let c = 0; c < hidden; c += 1) {
          const v = gelu((y[i * hidden + c] as number) + (bias[c] as number));
          row[c] = v;
          mean += v;
        }
        mean /= hidden;
        let variance = 0;
        for (let c = 0; c < hidden; c += 1) variance += ((row[c] as number) - mean) ** 2;
        const scale = 1 / Math.sqrt(variance / hidden + LAYER_NORM_EPSILON);
        const base = (plan.offsets[type] + i) * hidden;
        for (let c = 0; c < hidden; c += 1)
          out[base + c] = ((row[c] as number) - mean) * scale * (gamma[c] as number) + (beta[c] as number);
      }
    });
    return out;
  }

  /** Every type's rows of `h` times its projection, into one buffer. */
  #products(projections: PerType<Projection>, h: Float32Array, inWidth: number, plan: ForwardPlan): Products {
    const offset = this.#scratch.i32('offset', NODE_TYPES.length);
    let size = 0;
    NODE_TYPES.forEach((type, t) => {
      offset[t] = size;
      size += plan.counts[type] * (projections[t] as Projection).width;
    });
    const values = this.#scratch.f32('products', size);
    NODE_TYPES.forEach((type, t) => {
      const n = plan.counts[type];
      if (n === 0) return;
      const start = plan.offsets[type] * inWidth;
      project(h.subarray(start, start + n * inWidth), n, projections[t] as Projection, values, offset[t] as number);
    });
    return { values, offset };
  }

  /** Position in `products` of each src-table row's block `(node, src relation)`, skipping `lead` leading columns. */
  #srcTablePositions(
    products: Products,
    projections: PerType<Projection>,
    blockWidth: number,
    lead: number,
    plan: ForwardPlan,
  ): Int32Array {
    const positions = this.#scratch.i32('positions', plan.srcTableRows);
    NODE_TYPES.forEach((type, t) => {
      const r = this.#layout.bySrc[type].length;
      const n = plan.counts[type];
      const width = (projections[t] as Projection).width;
      const first = plan.srcTableOffsets[type];
      for (let s = 0; s < n; s += 1) {
        for (let slot = 0; slot < r; slot += 1) {
          positions[first + s * r + slot] = (products.offset[t] as number) + s * width + lead + slot * blockWidth;
        }
      }
    });
    return positions;
  }

  /** SAGE with the relation mean per dst type, then GELU and the residual (gnn-layers `sage`). */
  #sage(w: SageWeights, h: Float32Array, plan: ForwardPlan, outKey: string): Float32Array {
    const { hidden } = this.#config;
    const products = this.#products(w.projection, h, hidden, plan);
    const p = products.values;
    const acc = this.#scratch.f64('acc', plan.totalNodes * hidden);
    NODE_TYPES.forEach((type, t) => {
      const n = plan.counts[type];
      const width = (w.projection[t] as Projection).width;
      const bias = w.bias[t] as Float32Array;
      for (let i = 0; i < n; i += 1) {
        const from = (products.offset[t] as number) + i * width;
        const to = (plan.offsets[type] + i) * hidden;
        for (let c = 0; c < hidden; c += 1) acc[to + c] = (p[from + c] as number) + (bias[c] as number);
      }
    });
    if (plan.edges > 0) {
      const rowAt = this.#srcTablePositions(products, w.projection, hidden, hidden, plan);
      for (let e = 0; e < plan.edges; e += 1) {
        const from = rowAt[plan.srcRow[e] as number] as number;
        const to = (plan.dstNode[e] as number) * hidden;
        axpy(acc, to, p, from, plan.sageWeight[e] as number, hidden);
      }
    }
    const out = this.#scratch.f32(outKey, acc.length);
    for (let i = 0; i < acc.length; i += 1) out[i] = gelu(acc[i] as number) + (h[i] as number);
    return out;
  }

  /** GAT with the relation mean per dst type, then GELU and the residual when widths match (gnn-layers `gat`). */
  #gat(w: GatWeights, h: Float32Array, inWidth: number, plan: ForwardPlan, outKey: string): Float32Array {
    const { heads, gatHidden } = this.#config;
    const { bySrc, byDst } = this.#layout;
    const width = heads * gatHidden;
    const acc = this.#scratch.f64('acc', plan.totalNodes * gatHidden).fill(0);
    if (plan.edges > 0) {
      const products = this.#products(w.projection, h, inWidth, plan);
      const p = products.values;
      // Per src-table row: where its values are, and a_src·(W_src x) per head.
      const valueAt = this.#srcTablePositions(products, w.projection, width, 0, plan);
      const srcScore = this.#scratch.f64('srcScore', plan.srcTableRows * heads);
      NODE_TYPES.forEach((type, t) => {
        const first = plan.srcTableOffsets[type];
        const rows = plan.counts[type] * bySrc[type].length;
        sourceScores(p, valueAt, w.attSrc[t] as Float32Array, bySrc[type].length, first, rows, heads, gatHidden, srcScore);
      });
      // Per dst-table row (softmax segment): where its a_dst·(W_dst x) per head is.
      const dstAt = this.#scratch.i32('dstAt', plan.dstTableRows);
      NODE_TYPES.forEach((type, t) => {
        const rDst = byDst[type].length;
        const lead = (products.offset[t] as number) + bySrc[type].length * width;
        const rowWidth = (w.projection[t] as Projection).width;
        const first = plan.dstTableOffsets[type];
        for (let q = first; q < first + plan.counts[type] * rDst; q += 1) {
          const d = Math.floor((q - first) / rDst);
          dstAt[q] = lead + d * rowWidth + ((q - first) % rDst) * heads;
        }
      });
      const alpha = attention(plan, p, srcScore, dstAt, w.attEdge, this.#config.relations.length, heads, this.#scratch);
      scatterMessages(plan, p, valueAt, alpha, heads, gatHidden, acc);
    }
    const residual = inWidth === gatHidden;
    const out = this.#scratch.f32(outKey, acc.length);
    NODE_TYPES.forEach((type, t) => {
      const bias = w.bias[t] as Float32Array;
      for (let i = plan.offsets[type]; i < plan.offsets[type] + plan.counts[type]; i += 1) {
        for (let c = 0; c < gatHidden; c += 1) {
          const y = gelu((acc[i * gatHidden + c] as number) + (bias[c] as number));
          out[i * gatHidden + c] = residual ? y + (h[i * inWidth + c] as number) : y;
        }
      }
    });
    return out;
  }

  /** Readout at the global node and the heads (gnn.ts `#apply`). */
  #heads(head: ReadonlyMap<string, Float32Array>, h: Float32Array, plan: ForwardPlan): GnnOutput {
    const c = this.#config.gatHidden;
    const g = h.subarray(0, c);
    const weight = (name: string): Float32Array => head.get(name) as Float32Array;
    const linear = (x: ArrayLike<number>, prefix: string): Float32Array => {
      const b = weight(`${prefix}/b`);
      const w = weight(`${prefix}/w`);
      const out = new Float32Array(b.length);
      for (let j = 0; j < b.length; j += 1) {
        let sum = b[j] as number;
        for (let i = 0; i < x.length; i += 1) sum += (x[i] as number) * (w[i * b.length + j] as number);
        out[j] = sum;
      }
      return out;
    };
    const mlp = (prefix: string): Float32Array => linear(linear(g, `${prefix}/l1`).map(gelu), `${prefix}/l2`).map(Math.tanh);
    const scores = (type: 'seed' | 'site' | 'blueprint', prefix: string): Float32Array => {
      const w = weight(`${prefix}/w`);
      const b = weight(`${prefix}/b`)[0] as number;
      const out = new Float32Array(plan.counts[type]);
      for (let i = 0; i < out.length; i += 1) {
        const base = (plan.offsets[type] + i) * c;
        let sum = b;
        for (let k = 0; k < c; k += 1) sum += (h[base + k] as number) * (w[k] as number);
        out[i] = sum;
      }
      return out;
    };
    return {
      actionLogits: linear(g, 'head/action'),
      paramVector: mlp('head/param'),
      blendLogits: linear(g, 'head/blend'),
      schedule: mlp('head/schedule'),
      riskLogits: linear(g, 'head/risk'),
      value: linear(g, 'head/value')[0] as number,
      breakerLogits: linear(g, 'head/breaker'),
      seedScores: scores('seed', 'head/seed_score'),
      siteScores: scores('site', 'head/site_score'),
      blueprintScores: scores('blueprint', 'head/blueprint_score'),
    };
  }
}

/**
 * Grow-only work buffers, reused across forwards so that a forward allocates little more
 * than its outputs and the backend's read-backs (garbage is what stretched the tail).
 * A buffer's contents are whatever the last user left: callers fill what they read.
 */
class Scratch {
  readonly #buffers = new Map<string, Float64Array | Float32Array | Int32Array>();

  f64(key: string, length: number): Float64Array {
    return this.#take(key, length, (n) => new Float64Array(n));
  }

  f32(key: string, length: number): Float32Array {
    return this.#take(key, length, (n) => new Float32Array(n));
  }

  i32(key: string, length: number): Int32Array {
    return this.#take(key, length, (n) => new Int32Array(n));
  }

  #take<T extends Float64Array | Float32Array | Int32Array>(key: string, length: number, make: (length: number) => T): T {
    let buffer = this.#buffers.get(key) as T | undefined;
    if (buffer === undefined || buffer.length < length) {
      buffer = make(length);
      this.#buffers.set(key, buffer);
    }
    return buffer.subarray(0, length) as T;
  }
}

/** `a_src·(W_src x)` per head for `rows` src-table rows from `first` (one node type, `r` relations from it). */
function sourceScores(
  p: Float32Array,
  valueAt: Int32Array,
  attSrc: Float32Array,
  r: number,
  first: number,
  rows: number,
  heads: number,
  c: number,
  into: Float64Array,
): void {
  for (let q = first; q < first + rows; q += 1) {
    const slot = (q - first) % r;
    const at = valueAt[q] as number;
    for (let k = 0; k < heads; k += 1) {
      into[q * heads + k] = dot(p, at + k * c, attSrc, (slot * heads + k) * c, c);
    }
  }
}

/**
 * Per edge and head the attention coefficient: softmax over the edge's segment (dst node,
 * relation) of `LeakyReLU(src score + dst score + edge score)`, times the relation-mean
 * scale, divided by the head count (the mean over heads).
 */
function attention(
  plan: ForwardPlan,
  p: Float32Array,
  srcScore: Float64Array,
  dstAt: Int32Array,
  attEdge: Float32Array,
  relations: number,
  heads: number,
  scratch: Scratch,
): Float64Array {
  const { edges, edgeSelect, srcRow, dstSegment, attrs, relationScale } = plan;
  const logits = scratch.f64('logits', edges * heads);
  const max = scratch.f64('max', plan.dstTableRows * heads).fill(-Infinity);
  const stride = relations * heads;
  for (let e = 0; e < edges; e += 1) {
    const r = (edgeSelect[e] as number) - e * relations;
    const src = (srcRow[e] as number) * heads;
    const segment = (dstSegment[e] as number) * heads;
    const dst = dstAt[dstSegment[e] as number] as number;
    const a0 = attrs[e * EDGE_ATTR_DIM] as number;
    const a1 = attrs[e * EDGE_ATTR_DIM + 1] as number;
    const a2 = attrs[e * EDGE_ATTR_DIM + 2] as number;
    for (let k = 0; k < heads; k += 1) {
      const col = r * heads + k;
      const edge = a0 * (attEdge[col] as number) + a1 * (attEdge[stride + col] as number) + a2 * (attEdge[2 * stride + col] as number);
      const raw = (srcScore[src + k] as number) + (p[dst + k] as number) + edge;
      const logit = raw < 0 ? raw * LEAKY_RELU_SLOPE : raw;
      logits[e * heads + k] = logit;
      if (logit > (max[segment + k] as number)) max[segment + k] = logit;
    }
  }
  // A non-finite logit (diverged weights) must not turn the shift into NaN for the rest.
  for (let i = 0; i < max.length; i += 1) if (!Number.isFinite(max[i])) max[i] = 0;
  const denominator = scratch.f64('denominator', max.length).fill(0);
  for (let e = 0; e < edges; e += 1) {
    const segment = (dstSegment[e] as number) * heads;
    for (let k = 0; k < heads; k += 1) {
      const ex = Math.exp((logits[e * heads + k] as number) - (max[segment + k] as number));
      logits[e * heads + k] = ex;
      denominator[segment + k] = (denominator[segment + k] as number) + ex;
    }
  }
  for (let e = 0; e < edges; e += 1) {
    const segment = (dstSegment[e] as number) * heads;
    const scale = (relationScale[e] as number) / heads;
    for (let k = 0; k < heads; k += 1) {
      logits[e * heads + k] = ((logits[e * heads + k] as number) / (denominator[segment + k] as number)) * scale;
    }
  }
  return logits;
}

/** `acc[dst] += Σ_heads alpha · values[src]` over the edges. */
function scatterMessages(
  plan: ForwardPlan,
  p: Float32Array,
  valueAt: Int32Array,
  alpha: Float64Array,
  heads: number,
  c: number,
  acc: Float64Array,
): void {
  const { edges, srcRow, dstNode } = plan;
  for (let e = 0; e < edges; e += 1) {
    const from = valueAt[srcRow[e] as number] as number;
    const to = (dstNode[e] as number) * c;
    for (let k = 0; k < heads; k += 1) {
      axpy(acc, to, p, from + k * c, alpha[e * heads + k] as number, c);
    }
  }
}

/**
 * `x · projection` for `rows` rows of `x`, written at `into[at…]` (rows of `projection.width`):
 * each block in JS when small, else by the backend (one upload of `x` shared by the blocks).
 */
function project(x: Float32Array, rows: number, projection: Projection, into: Float32Array, at: number): void {
  const { inWidth, width } = projection;
  let input: tf.Tensor2D | undefined;
  try {
    let column = 0;
    for (const block of projection.blocks) {
      if (rows * inWidth * block.width <= JS_PRODUCT_MAX_MACS) {
        jsProduct(x, rows, inWidth, block, into, at + column, width);
      } else {
        input ??= tf.tensor2d(x, [rows, inWidth]);
        const product = tf.matMul(input, block.variable);
        try {
          const values = product.dataSync() as Float32Array;
          if (block.width === width) into.set(values, at);
          else for (let i = 0; i < rows; i += 1) into.set(values.subarray(i * block.width, (i + 1) * block.width), at + i * width + column);
        } finally {
          product.dispose();
        }
      }
      column += block.width;
    }
  } finally {
    input?.dispose();
  }
}

/** `x · block` in JS, row `i` written at `into[at + i·stride…]`. */
function jsProduct(x: Float32Array, rows: number, inWidth: number, block: Block, into: Float32Array, at: number, stride: number): void {
  const { width, values } = block;
  const acc = new Float64Array(width);
  for (let i = 0; i < rows; i += 1) {
    acc.fill(0);
    for (let k = 0; k < inWidth; k += 1) {
      const a = x[i * inWidth + k] as number;
      const base = k * width;
      for (let j = 0; j < width; j += 1) acc[j] = (acc[j] as number) + a * (values[base + j] as number);
    }
    into.set(acc, at + i * stride);
  }
}

/** Reads every weight of the current version and builds the side-by-side projections. */
function readSnapshot(config: GnnConfig, layout: RelationLayout, variables: ReadonlyMap<string, tf.Variable>): Snapshot {
  const { hidden, gatHidden, heads, nodeDims } = config;
  const { bySrc, byDst } = layout;
  const variable = (name: string): tf.Variable => {
    const v = variables.get(name);
    if (v === undefined) throw new EsperError(ErrorCode.INVALID_STATE, `TamiyoGnn has no variable '${name}'`);
    return v;
  };
  const read = (name: string): Float32Array => Float32Array.from(variable(name).dataSync() as Float32Array);
  const block = (name: string, width: number): Block => ({ width, variable: variable(name), values: read(name) });
  const projection = (inWidth: number, blocks: readonly Block[]): Projection => ({
    inWidth,
    width: blocks.reduce((n, b) => n + b.width, 0),
    blocks,
  });
  const encoder: EncoderWeights = {
    projection: NODE_TYPES.map((t) => projection(nodeDims[t], [block(`encoder/${t}/w`, hidden)])),
    bias: NODE_TYPES.map((t) => read(`encoder/${t}/b`)),
    gamma: NODE_TYPES.map((t) => read(`encoder/${t}/ln_gamma`)),
    beta: NODE_TYPES.map((t) => read(`encoder/${t}/ln_beta`)),
  };
  const sage = [1, 2].map((layer): SageWeights => ({
    projection: NODE_TYPES.map((t) =>
      projection(hidden, [
        block(`sage${layer}/root/${t}`, hidden),
        ...(bySrc[t].length > 0 ? [block(`sage${layer}/neigh/${t}`, bySrc[t].length * hidden)] : []),
      ]),
    ),
    bias: NODE_TYPES.map((t) => read(`sage${layer}/bias/${t}`)),
  }));
  const width = heads * gatHidden;
  const gat = [1, 2].map((layer): GatWeights => {
    const inWidth = layer === 1 ? hidden : gatHidden;
    return {
      projection: NODE_TYPES.map((t) =>
        projection(inWidth, [
          ...(bySrc[t].length > 0 ? [block(`gat${layer}/src/${t}`, bySrc[t].length * width)] : []),
          block(`gat${layer}/att_dst/${t}`, byDst[t].length * heads),
        ]),
      ),
      attSrc: NODE_TYPES.map((t) => (bySrc[t].length > 0 ? read(`gat${layer}/att_src/${t}`) : new Float32Array(0))),
      bias: NODE_TYPES.map((t) => read(`gat${layer}/bias/${t}`)),
      attEdge: read(`gat${layer}/att_edge`),
    };
  });
  const head = new Map<string, Float32Array>();
  for (const name of variables.keys()) if (name.startsWith('head/')) head.set(name, read(name));
  return { dataIds: [...variables.values()].map((v) => v.dataId), encoder, sage, gat, head };
}
