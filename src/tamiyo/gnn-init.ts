/** The GNN's weights at initialisation (reference §7.2 item 6), in the fused block layout. */
import { Initializer, initializerValues, type Rng } from '../tensor/index.js';
import { PolicyAction, type GnnConfig } from './gnn-config.js';
import type { RelationLayout } from './gnn-plan.js';
import { EDGE_ATTR_DIM, NODE_TYPES } from './graph-types.js';

/** Hidden width of the two-layer heads (param vector, schedule), reference §7.2. */
export const HEAD_HIDDEN = 64;

/** Receives one weight: logical name, shape and initial values. */
export type AddWeight = (logical: string, shape: readonly number[], values: Float32Array) => void;

/**
 * Creates every weight of a GNN from `rng`, in a fixed order, so the same config and seed
 * give bit-identical weights.
 *
 * Weight layout (what checkpoints store, by logical name): the per-relation weights of
 * §7.2 are kept in blocks, one block column per relation in config order, so that a layer
 * costs a few kernel calls per node type instead of a dozen per relation (kernel-call
 * overhead, not arithmetic, dominates on wasm at these sizes):
 * - `sage{1,2}/neigh/<src type>` `[hidden, R_src·hidden]` — `W_l` of each relation from that type;
 * - `sage{1,2}/root/<dst type>`, `sage{1,2}/bias/<dst type>` — the relation mean of `W_r`
 *   and `b_l` folded into one matrix and bias per dst type (an exact reparametrisation);
 * - `gat{1,2}/src/<type>` `[in, R_src·heads·gatHidden]` and `gat{1,2}/att_src/<type>`
 *   `[R_src, heads, gatHidden]` per src type; `gat{1,2}/att_dst/<type>` `[in, R_dst·heads]`
 *   and `gat{1,2}/att_edge` `[3, R·heads]` hold `W_dstᵀ·a_dst` and `W_edgeᵀ·a_edge`
 *   folded (GATConv uses W_dst and W_edge only through those products, so this is an exact
 *   reparametrisation, initialised as the product of the reference's glorot draws);
 *   `gat{1,2}/bias/<dst type>` (relation mean of the GAT biases);
 * - `encoder/<type>/{w,b,ln_gamma,ln_beta}`, `head/<name>/{w,b}`; the action head keeps
 *   the §7.2 init (weights 0, bias −0.5, bias[WAIT] +0.5) so an untrained net picks WAIT.
 */
export function initialWeights(config: GnnConfig, layout: RelationLayout, rng: Rng, add: AddWeight): void {
  const { hidden, gatHidden, heads, nodeDims } = config;
  const { bySrc, byDst } = layout;
  const relationCount = config.relations.length;
  for (const type of NODE_TYPES) {
    add(`encoder/${type}/w`, [nodeDims[type], hidden], initializerValues(Initializer.GLOROT_UNIFORM, [nodeDims[type], hidden], rng));
    add(`encoder/${type}/b`, [hidden], filled(hidden, 0));
    add(`encoder/${type}/ln_gamma`, [hidden], filled(hidden, 1));
    add(`encoder/${type}/ln_beta`, [hidden], filled(hidden, 0));
  }
  const torch = (shape: readonly number[], fanIn: number): Float32Array => torchDefault(shape, fanIn, rng);
  const glorot = (shape: readonly number[]): Float32Array => initializerValues(Initializer.GLOROT_UNIFORM, shape, rng);
  for (const layer of [1, 2]) {
    for (const type of NODE_TYPES) {
      const r = bySrc[type].length;
      if (r > 0)
        add(
          `sage${layer}/neigh/${type}`,
          [hidden, r * hidden],
          blockColumns(hidden, hidden, r, () => torch([hidden, hidden], hidden)),
        );
    }
    for (const type of NODE_TYPES) {
      const r = byDst[type].length;
      add(
        `sage${layer}/root/${type}`,
        [hidden, hidden],
        meanOf(r, () => torch([hidden, hidden], hidden)),
      );
      add(
        `sage${layer}/bias/${type}`,
        [hidden],
        meanOf(r, () => torch([hidden], hidden)),
      );
    }
  }
  const width = heads * gatHidden;
  for (const layer of [1, 2]) {
    const inWidth = layer === 1 ? hidden : gatHidden;
    // W_dst and W_edge appear only as W_dstᵀ·a_dst and W_edgeᵀ·a_edge: stored folded.
    const folded = (rows: number): Float32Array => foldAttention(glorot([rows, width]), glorot([heads, gatHidden]), rows, heads, gatHidden);
    for (const type of NODE_TYPES) {
      const r = bySrc[type].length;
      if (r === 0) continue;
      add(
        `gat${layer}/src/${type}`,
        [inWidth, r * width],
        blockColumns(inWidth, width, r, () => glorot([inWidth, width])),
      );
      add(
        `gat${layer}/att_src/${type}`,
        [r, heads, gatHidden],
        blockRows(r, () => glorot([heads, gatHidden])),
      );
    }
    for (const type of NODE_TYPES) {
      const r = byDst[type].length;
      add(
        `gat${layer}/att_dst/${type}`,
        [inWidth, r * heads],
        blockColumns(inWidth, heads, r, () => folded(inWidth)),
      );
    }
    add(
      `gat${layer}/att_edge`,
      [EDGE_ATTR_DIM, relationCount * heads],
      blockColumns(EDGE_ATTR_DIM, heads, relationCount, () => folded(EDGE_ATTR_DIM)),
    );
    for (const type of NODE_TYPES) add(`gat${layer}/bias/${type}`, [gatHidden], filled(gatHidden, 0));
  }
  const c = gatHidden;
  const actionBias = filled(config.actionClasses, -0.5);
  actionBias[PolicyAction.WAIT] = 0.5;
  add('head/action/w', [c, config.actionClasses], filled(c * config.actionClasses, 0));
  add('head/action/b', [config.actionClasses], actionBias);
  const linear = (prefix: string, fanIn: number, out: number): void => {
    add(`${prefix}/w`, [fanIn, out], torch([fanIn, out], fanIn));
    add(`${prefix}/b`, [out], torch([out], fanIn));
  };
  linear('head/param/l1', c, HEAD_HIDDEN);
  linear('head/param/l2', HEAD_HIDDEN, config.paramVector);
  linear('head/blend', c, config.blendClasses);
  linear('head/schedule/l1', c, HEAD_HIDDEN);
  linear('head/schedule/l2', HEAD_HIDDEN, config.scheduleOutputs);
  linear('head/risk', c, config.riskClasses);
  linear('head/value', c, 1);
  linear('head/breaker', c, 2);
  linear('head/seed_score', c, 1);
  linear('head/site_score', c, 1);
  linear('head/blueprint_score', c, 1);
}

function filled(size: number, value: number): Float32Array {
  return new Float32Array(size).fill(value);
}

/** PyTorch `nn.Linear` default: U(±1/√fan_in) for weight and bias (reference §7.2 item 6). */
function torchDefault(shape: readonly number[], fanIn: number, rng: Rng): Float32Array {
  const limit = 1 / Math.sqrt(fanIn);
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i += 1) out[i] = (2 * rng.nextFloat() - 1) * limit;
  return out;
}

/** `count` row-major `[rows, width]` blocks side by side: `[rows, count·width]`. */
function blockColumns(rows: number, width: number, count: number, block: () => Float32Array): Float32Array {
  const out = new Float32Array(rows * width * count);
  for (let k = 0; k < count; k += 1) {
    const values = block();
    for (let i = 0; i < rows; i += 1) out.set(values.subarray(i * width, (i + 1) * width), i * count * width + k * width);
  }
  return out;
}

/** `count` blocks stacked: `[count, ...block]`. */
function blockRows(count: number, block: () => Float32Array): Float32Array {
  const parts = Array.from({ length: count }, block);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** `Wᵀa` per head: `[rows, heads·c]` weights and `[heads, c]` attention → `[rows, heads]`. */
function foldAttention(w: Float32Array, att: Float32Array, rows: number, heads: number, c: number): Float32Array {
  const out = new Float32Array(rows * heads);
  for (let i = 0; i < rows; i += 1) {
    for (let h = 0; h < heads; h += 1) {
      let acc = 0;
      for (let k = 0; k < c; k += 1) acc += (w[i * heads * c + h * c + k] as number) * (att[h * c + k] as number);
      out[i * heads + h] = acc;
    }
  }
  return out;
}

/** The mean of `count` draws: the relation mean of per-relation root weights at init. */
function meanOf(count: number, draw: () => Float32Array): Float32Array {
  let acc: Float64Array | undefined;
  for (let k = 0; k < count; k += 1) {
    const values = draw();
    acc ??= new Float64Array(values.length);
    for (let i = 0; i < values.length; i += 1) acc[i] = (acc[i] as number) + (values[i] as number);
  }
  if (acc === undefined) return new Float32Array(0);
  const out = new Float32Array(acc.length);
  for (let i = 0; i < acc.length; i += 1) out[i] = (acc[i] as number) / count;
  return out;
}
