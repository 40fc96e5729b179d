/**
 * Tamiyo's learned policy: a heterogeneous graph neural network over a {@link PolicyGraph}
 * (reference prototype-tamiyo-simic §7.2), written with functional tfjs ops.
 *
 * Stack: per-type encoder Linear → GELU → LayerNorm; two hetero SAGE layers (per-relation
 * `W_l·mean_j x_j + b_l + W_r·x_i`, relation-mean per dst type); two hetero GAT layers
 * (bipartite, edge attributes, `heads` heads averaged, per-dst segment softmax); after
 * every conv GELU then a residual where the widths match; readout = the `global` node;
 * graph-level heads plus per-node score heads for `seed`, `site` and `blueprint` nodes.
 *
 * Departures from the reference, on purpose:
 * - §7.2 item 7 / §17.1: inference is deterministic (eval mode, no dropout); there is no
 *   dropout at all in this port since training happens offline in Simic.
 * - Our action space (see {@link PolicyAction}) replaces §8.1's; the action head keeps the
 *   §7.2 init (weights 0, bias −0.5, bias[0] +0.5) so an untrained net picks 0 = WAIT.
 * - Four blend classes (the leyline `BlendMode`s) instead of three blending methods; extra
 *   score heads for `site` nodes; `blueprint` scores one row per candidate blueprint.
 * - GELU is the exact erf form `0.5·x·(1 + erf(x/√2))` as in the reference (not the
 *   sigmoid approximation of `karn/family.ts`).
 * - Every layer runs on one `[nodes, width]` tensor (type-major rows, global first): a few
 *   matmuls per node type, then one gather and one `unsortedSegmentSum` over the edges of
 *   all relations (per-edge weights carry each relation's in-degree and the relation
 *   mean) — the same sums as per-relation convs in far fewer kernel calls. Weights are
 *   stored in per-type blocks accordingly (see {@link TamiyoGnn}); the SAGE root/bias and
 *   the GAT bias are folded per dst type and GAT's `W_dstᵀa_dst`, `W_edgeᵀa_edge` are
 *   stored folded, all exact reparametrisations of §7.2.
 * - The GAT softmax runs over (relation, dst) segments, shifted by the per-segment max
 *   computed on the host from the logits (tfjs has no segment max; a constant shift, so
 *   values and gradients are unchanged).
 *
 * Default sizes (`bench/tamiyo-gnn.ts`, wasm backend, 2-core CPU shared with other jobs
 * at load 3–10, so wall p95 is inflated; CPU ms per forward is the steadier figure; 29
 * relations): the reference sizes 256/128/4 (10.6 M weights, 42 MB payload) took p50
 * 12–17 ms, 13–19 ms CPU per forward at 50 nodes and 46–58 ms at 200 nodes. 64/64/4 took
 * ≈ 5–6 ms at 50 nodes but serialises to 5.2 MB, over the 4 MiB message bound a
 * `PolicyUpdate` must fit (`CONTRACT_LIMITS.messageMaxBytes`). 64/32/4 fits (2.75 MB) at
 * p50 4.5–6 ms, ≈ 6 ms CPU at 50 nodes; below that, per-kernel overhead (≈ 300 kernel
 * calls per forward) dominates, so 32/32/2 buys only ≈ 1.5 ms.
 */
import { ErrorCode, EsperError } from '../core/index.js';
import { BlendMode } from '../leyline/index.js';
import { Initializer, initializerValues, tf, type Rng } from '../tensor/index.js';
import {
  EDGE_ATTR_DIM,
  NODE_FEATURE_DIMS,
  NODE_TYPES,
  type EdgeSet,
  type NodeType,
  type PolicyGraph,
  type RelationSpec,
} from './graph-types.js';

/** The policy's actions (index into the action logits). Indices 7–31 are reserved. */
export const PolicyAction = {
  /** Do nothing this step. */
  WAIT: 0,
  /** Germinate a seed at the chosen site with the chosen blueprint. */
  GERMINATE: 1,
  /** Cull the chosen seed. */
  CULL: 2,
  /** Adjust the optimizer by the param vector. */
  OPTIMIZER: 3,
  /** Pause adaptation. */
  PAUSE: 4,
  /** Open the adaptation breaker. */
  BREAKER_OPEN: 5,
  /** Close the adaptation breaker. */
  BREAKER_CLOSE: 6,
} as const;

/** Union of {@link PolicyAction} values. */
export type PolicyAction = (typeof PolicyAction)[keyof typeof PolicyAction];

/** Number of defined (non-reserved) actions. */
export const POLICY_ACTION_COUNT = 7;

/** Blend modes in blend-head order: class `i` is `BLEND_HEAD_MODES[i]`. */
export const BLEND_HEAD_MODES: readonly BlendMode[] = Object.freeze([
  BlendMode.CONVEX,
  BlendMode.RESIDUAL,
  BlendMode.CHANNEL,
  BlendMode.CONFIDENCE,
]);

/** Hidden width of the two-layer heads (param vector, schedule), reference §7.2. */
export const HEAD_HIDDEN = 64;

const LAYER_NORM_EPSILON = 1e-5;
const LEAKY_RELU_SLOPE = 0.2;
const RELATION_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Architecture of a {@link TamiyoGnn}. */
export interface GnnConfig {
  /** The graph builder's relation list; every node type must be the dst of at least one. */
  readonly relations: readonly RelationSpec[];
  /** Feature width per node type. @default NODE_FEATURE_DIMS */
  readonly nodeDims: Readonly<Record<NodeType, number>>;
  /** Encoder and SAGE width. */
  readonly hidden: number;
  /** GAT width (per head; heads are averaged). */
  readonly gatHidden: number;
  /** GAT attention heads. */
  readonly heads: number;
  /** Action logits (≥ {@link POLICY_ACTION_COUNT}). @default 32 */
  readonly actionClasses: number;
  /** Blend-mode logits (≤ {@link BLEND_HEAD_MODES} length). @default 4 */
  readonly blendClasses: number;
  /** Risk-class logits. @default 5 */
  readonly riskClasses: number;
  /** Width of the tanh param vector; element 0 is the optimizer delta. @default 4 */
  readonly paramVector: number;
  /** Width of the tanh schedule head; (start, end). @default 2 */
  readonly scheduleOutputs: number;
}

/** A {@link GnnConfig} without its relation list. */
export type GnnSizes = Omit<GnnConfig, 'relations'>;

/**
 * Default sizes: hidden 64, GAT 32, 4 heads (reference: 256/128/4). Chosen by measurement
 * (file comment): the reference sizes miss the < 10 ms aim at ~50 nodes on the wasm
 * backend and their weights do not fit one `PolicyUpdate`; these do both.
 */
export const DEFAULT_GNN_CONFIG: Readonly<GnnSizes> = Object.freeze({
  nodeDims: NODE_FEATURE_DIMS,
  hidden: 64,
  gatHidden: 32,
  heads: 4,
  actionClasses: 32,
  blendClasses: 4,
  riskClasses: 5,
  paramVector: 4,
  scheduleOutputs: 2,
});

/** Reference sizes (§7.1): hidden 256, GAT 128, 4 heads. */
export const REFERENCE_GNN_SIZES: Readonly<GnnSizes> = Object.freeze({ ...DEFAULT_GNN_CONFIG, hidden: 256, gatHidden: 128 });

/** A full config: `relations` plus {@link DEFAULT_GNN_CONFIG} overridden by `sizes`. */
export function gnnConfigFor(relations: readonly RelationSpec[], sizes: Partial<GnnSizes> = {}): GnnConfig {
  const config: GnnConfig = { ...DEFAULT_GNN_CONFIG, ...sizes, relations: [...relations] };
  validateGnnConfig(config);
  return config;
}

/** Stable key of a relation: `src-name-dst` (relation names repeat across type pairs). */
export function relationKey(relation: RelationSpec): string {
  return `${relation.src}-${relation.name}-${relation.dst}`;
}

function badConfig(message: string, field: string): EsperError {
  return new EsperError(ErrorCode.INVALID_ARGUMENT, `gnn config: ${message}`, { details: { field } });
}

/** Throws `INVALID_ARGUMENT` naming the first bad field of `config`. */
export function validateGnnConfig(config: GnnConfig): void {
  const positive = (value: unknown, field: string, min = 1): void => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 1 << 16) {
      throw badConfig(`${field} must be an integer ≥ ${min}, got ${String(value)}`, field);
    }
  };
  positive(config.hidden, 'hidden');
  positive(config.gatHidden, 'gatHidden');
  positive(config.heads, 'heads');
  positive(config.actionClasses, 'actionClasses', POLICY_ACTION_COUNT);
  positive(config.blendClasses, 'blendClasses');
  if (config.blendClasses > BLEND_HEAD_MODES.length) throw badConfig(`blendClasses must be ≤ ${BLEND_HEAD_MODES.length}`, 'blendClasses');
  positive(config.riskClasses, 'riskClasses');
  positive(config.paramVector, 'paramVector');
  positive(config.scheduleOutputs, 'scheduleOutputs', 2);
  if (typeof config.nodeDims !== 'object' || config.nodeDims === null) throw badConfig('nodeDims missing', 'nodeDims');
  for (const type of NODE_TYPES) positive(config.nodeDims[type], `nodeDims.${type}`);
  if (Object.keys(config.nodeDims).length !== NODE_TYPES.length) throw badConfig('nodeDims has unknown node types', 'nodeDims');
  if (!Array.isArray(config.relations)) throw badConfig('relations must be an array', 'relations');
  const keys = new Set<string>();
  const types = new Set<string>(NODE_TYPES);
  const dsts = new Set<NodeType>();
  for (const r of config.relations) {
    if (typeof r?.name !== 'string' || !RELATION_NAME.test(r.name)) throw badConfig(`bad relation name '${String(r?.name)}'`, 'relations');
    if (!types.has(r.src) || !types.has(r.dst)) throw badConfig(`relation '${r.name}' has an unknown node type`, 'relations');
    const key = relationKey(r);
    if (keys.has(key)) throw badConfig(`duplicate relation '${key}'`, 'relations');
    keys.add(key);
    dsts.add(r.dst);
  }
  for (const type of NODE_TYPES) {
    if (!dsts.has(type)) throw badConfig(`node type '${type}' is the dst of no relation`, 'relations');
  }
}

/** Plain outputs of one forward pass (batch of one graph). */
export interface GnnOutput {
  /** `[actionClasses]` (see {@link PolicyAction}). */
  readonly actionLogits: Float32Array;
  /** `[paramVector]`, tanh; element 0 is the optimizer delta. */
  readonly paramVector: Float32Array;
  /** `[blendClasses]`, in {@link BLEND_HEAD_MODES} order. */
  readonly blendLogits: Float32Array;
  /** `[scheduleOutputs]`, tanh; (start, end) before §8.2 mapping. */
  readonly schedule: Float32Array;
  /** `[riskClasses]`. */
  readonly riskLogits: Float32Array;
  /** Value estimate. */
  readonly value: number;
  /** `[2]`: open, close. */
  readonly breakerLogits: Float32Array;
  /** One score per `seed` node, in node order. */
  readonly seedScores: Float32Array;
  /** One score per `site` node. */
  readonly siteScores: Float32Array;
  /** One score per `blueprint` node. */
  readonly blueprintScores: Float32Array;
}

/** The same outputs as tensors (for training); the caller owns them. */
export interface GnnTensors {
  readonly actionLogits: tf.Tensor1D;
  readonly paramVector: tf.Tensor1D;
  readonly blendLogits: tf.Tensor1D;
  readonly schedule: tf.Tensor1D;
  readonly riskLogits: tf.Tensor1D;
  readonly value: tf.Tensor1D;
  readonly breakerLogits: tf.Tensor1D;
  readonly seedScores: tf.Tensor1D;
  readonly siteScores: tf.Tensor1D;
  readonly blueprintScores: tf.Tensor1D;
}

const TENSOR_OUTPUT_KEYS = [
  'actionLogits',
  'paramVector',
  'blendLogits',
  'schedule',
  'riskLogits',
  'value',
  'breakerLogits',
  'seedScores',
  'siteScores',
  'blueprintScores',
] as const satisfies readonly (keyof GnnTensors)[];

/** Which weight block each relation uses (fixed by the config's relation order). */
interface RelationLayout {
  /** Relation indices (config order) whose src / dst is each type. */
  readonly bySrc: Readonly<Record<NodeType, readonly number[]>>;
  readonly byDst: Readonly<Record<NodeType, readonly number[]>>;
  /** Per relation: its position within its src type's block and its dst type's block. */
  readonly srcSlot: readonly number[];
  readonly dstSlot: readonly number[];
}

/** Per-forward index plan over the type-major node order (global first). */
interface ForwardPlan {
  readonly counts: Readonly<Record<NodeType, number>>;
  readonly offsets: Readonly<Record<NodeType, number>>;
  readonly totalNodes: number;
  /** NODE_TYPES index of every node row. */
  readonly nodeType: Int32Array;
  /** Row offset of each type in the per-(node, src relation) tables. */
  readonly srcTableOffsets: Readonly<Record<NodeType, number>>;
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

type TypeRecord<T> = Record<NodeType, T>;

function perType<T>(fn: (type: NodeType, index: number) => T): TypeRecord<T> {
  const out = {} as TypeRecord<T>;
  NODE_TYPES.forEach((type, index) => {
    out[type] = fn(type, index);
  });
  return out;
}

let nextInstance = 0;

/**
 * The heterogeneous GNN policy. Variables are created from `rng` in a fixed order, so the
 * same config and seed give bit-identical weights; {@link TamiyoGnn.forward} runs in eval
 * mode and is deterministic.
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
 * - `encoder/<type>/{w,b,ln_gamma,ln_beta}`, `head/<name>/{w,b}`.
 */
export class TamiyoGnn {
  /** The validated architecture. */
  readonly config: GnnConfig;
  readonly #scope: string;
  readonly #variables = new Map<string, tf.Variable>();
  readonly #layout: RelationLayout;
  #disposed = false;

  constructor(config: GnnConfig, rng: Rng) {
    validateGnnConfig(config);
    this.config = Object.freeze({
      ...config,
      relations: Object.freeze([...config.relations]),
      nodeDims: Object.freeze({ ...config.nodeDims }),
    });
    // tfjs requires globally unique variable names; logical names (without the scope) are
    // what checkpoints store.
    this.#scope = `tamiyo-gnn#${nextInstance}`;
    nextInstance += 1;
    this.#layout = relationLayout(this.config.relations);
    try {
      this.#build(rng);
    } catch (error) {
      this.dispose();
      throw error;
    }
  }

  #build(rng: Rng): void {
    const { hidden, gatHidden, heads, nodeDims } = this.config;
    const { bySrc, byDst } = this.#layout;
    const relationCount = this.config.relations.length;
    for (const type of NODE_TYPES) {
      this.#add(
        `encoder/${type}/w`,
        [nodeDims[type], hidden],
        initializerValues(Initializer.GLOROT_UNIFORM, [nodeDims[type], hidden], rng),
      );
      this.#add(`encoder/${type}/b`, [hidden], filled(hidden, 0));
      this.#add(`encoder/${type}/ln_gamma`, [hidden], filled(hidden, 1));
      this.#add(`encoder/${type}/ln_beta`, [hidden], filled(hidden, 0));
    }
    const torch = (shape: readonly number[], fanIn: number): Float32Array => torchDefault(shape, fanIn, rng);
    const glorot = (shape: readonly number[]): Float32Array => initializerValues(Initializer.GLOROT_UNIFORM, shape, rng);
    for (const layer of [1, 2]) {
      for (const type of NODE_TYPES) {
        const r = bySrc[type].length;
        if (r > 0)
          this.#add(
            `sage${layer}/neigh/${type}`,
            [hidden, r * hidden],
            blockColumns(hidden, hidden, r, () => torch([hidden, hidden], hidden)),
          );
      }
      for (const type of NODE_TYPES) {
        const r = byDst[type].length;
        this.#add(
          `sage${layer}/root/${type}`,
          [hidden, hidden],
          meanOf(r, () => torch([hidden, hidden], hidden)),
        );
        this.#add(
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
      const folded = (rows: number): Float32Array =>
        foldAttention(glorot([rows, width]), glorot([heads, gatHidden]), rows, heads, gatHidden);
      for (const type of NODE_TYPES) {
        const r = bySrc[type].length;
        if (r === 0) continue;
        this.#add(
          `gat${layer}/src/${type}`,
          [inWidth, r * width],
          blockColumns(inWidth, width, r, () => glorot([inWidth, width])),
        );
        this.#add(
          `gat${layer}/att_src/${type}`,
          [r, heads, gatHidden],
          blockRows(r, () => glorot([heads, gatHidden])),
        );
      }
      for (const type of NODE_TYPES) {
        const r = byDst[type].length;
        this.#add(
          `gat${layer}/att_dst/${type}`,
          [inWidth, r * heads],
          blockColumns(inWidth, heads, r, () => folded(inWidth)),
        );
      }
      this.#add(
        `gat${layer}/att_edge`,
        [EDGE_ATTR_DIM, relationCount * heads],
        blockColumns(EDGE_ATTR_DIM, heads, relationCount, () => folded(EDGE_ATTR_DIM)),
      );
      for (const type of NODE_TYPES) this.#add(`gat${layer}/bias/${type}`, [gatHidden], filled(gatHidden, 0));
    }
    const c = gatHidden;
    const actionBias = filled(this.config.actionClasses, -0.5);
    actionBias[PolicyAction.WAIT] = 0.5;
    this.#add('head/action/w', [c, this.config.actionClasses], filled(c * this.config.actionClasses, 0));
    this.#add('head/action/b', [this.config.actionClasses], actionBias);
    const linear = (prefix: string, fanIn: number, out: number): void => {
      this.#add(`${prefix}/w`, [fanIn, out], torch([fanIn, out], fanIn));
      this.#add(`${prefix}/b`, [out], torch([out], fanIn));
    };
    linear('head/param/l1', c, HEAD_HIDDEN);
    linear('head/param/l2', HEAD_HIDDEN, this.config.paramVector);
    linear('head/blend', c, this.config.blendClasses);
    linear('head/schedule/l1', c, HEAD_HIDDEN);
    linear('head/schedule/l2', HEAD_HIDDEN, this.config.scheduleOutputs);
    linear('head/risk', c, this.config.riskClasses);
    linear('head/value', c, 1);
    linear('head/breaker', c, 2);
    linear('head/seed_score', c, 1);
    linear('head/site_score', c, 1);
    linear('head/blueprint_score', c, 1);
  }

  #add(logical: string, shape: readonly number[], values: Float32Array): void {
    const initial = tf.tensor(values, [...shape], 'float32');
    try {
      this.#variables.set(logical, tf.variable(initial, true, `${this.#scope}/${logical}`));
    } finally {
      initial.dispose();
    }
  }

  /** Every variable, in creation order (the order of {@link TamiyoGnn.variablesByName}). */
  trainableVariables(): tf.Variable[] {
    this.#assertLive();
    return [...this.#variables.values()];
  }

  /** Variables by logical name (`encoder/seed/w`, `gat2/att_src/layer`, ...), creation order. */
  variablesByName(): ReadonlyMap<string, tf.Variable> {
    this.#assertLive();
    return this.#variables;
  }

  /** Total number of weights. */
  get parameterCount(): number {
    let n = 0;
    for (const v of this.#variables.values()) n += v.size;
    return n;
  }

  /** Whether {@link TamiyoGnn.dispose} ran. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Frees every variable; idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const v of this.#variables.values()) v.dispose();
  }

  /**
   * One deterministic forward pass (eval mode) returning plain arrays. Leaves no tensors
   * behind. Throws `TAMIYO_GRAPH_INVALID` for a graph that does not fit the config.
   */
  forward(graph: PolicyGraph): GnnOutput {
    this.#assertLive();
    const plan = this.#plan(graph);
    const flat = tf.tidy(() => {
      const out = this.#apply(graph, plan);
      return tf.concat(TENSOR_OUTPUT_KEYS.map((key) => out[key]));
    });
    let data: Float32Array;
    try {
      data = flat.dataSync() as Float32Array;
    } finally {
      flat.dispose();
    }
    let offset = 0;
    const take = (n: number): Float32Array => {
      const part = data.slice(offset, offset + n);
      offset += n;
      return part;
    };
    const { config } = this;
    return {
      actionLogits: take(config.actionClasses),
      paramVector: take(config.paramVector),
      blendLogits: take(config.blendClasses),
      schedule: take(config.scheduleOutputs),
      riskLogits: take(config.riskClasses),
      value: take(1)[0] as number,
      breakerLogits: take(2),
      seedScores: take(plan.counts.seed),
      siteScores: take(plan.counts.site),
      blueprintScores: take(plan.counts.blueprint),
    };
  }

  /**
   * The forward pass as tensors, for training (the caller disposes them, or calls this
   * inside `tf.tidy`). Differentiable with respect to {@link TamiyoGnn.trainableVariables}.
   */
  apply(graph: PolicyGraph): GnnTensors {
    this.#assertLive();
    const plan = this.#plan(graph);
    // GnnTensors is an interface (no index signature), hence the casts through tidy.
    return tf.tidy(() => this.#apply(graph, plan) as unknown as tf.TensorContainer) as unknown as GnnTensors;
  }

  #assertLive(): void {
    if (this.#disposed) throw new EsperError(ErrorCode.INVALID_STATE, 'TamiyoGnn is disposed', { details: { scope: this.#scope } });
  }

  #v(logical: string): tf.Variable {
    const v = this.#variables.get(logical);
    if (v === undefined) throw new EsperError(ErrorCode.INVALID_STATE, `TamiyoGnn has no variable '${logical}'`);
    return v;
  }

  /** Checks `graph` against the config and lays out its edges for the fused layers. */
  #plan(graph: PolicyGraph): ForwardPlan {
    const invalid = (message: string, details: Record<string, string | number> = {}): EsperError =>
      new EsperError(ErrorCode.TAMIYO_GRAPH_INVALID, `policy graph: ${message}`, { details });
    const { relations } = this.config;
    const { bySrc, byDst, srcSlot, dstSlot } = this.#layout;
    if (graph === null || typeof graph !== 'object' || graph.nodes === undefined || !Array.isArray(graph.edges)) {
      throw invalid('not a policy graph');
    }
    const counts = perType((type) => {
      const set = graph.nodes[type];
      if (set === undefined) throw invalid(`node type '${type}' is missing`, { type });
      const n = set.ids.length;
      const dim = this.config.nodeDims[type];
      if (set.features.length !== n * dim)
        throw invalid(`'${type}' features have ${set.features.length} values, expected ${n}×${dim}`, { type });
      for (let i = 0; i < set.features.length; i += 1) {
        if (!Number.isFinite(set.features[i])) throw invalid(`'${type}' feature ${i} is not finite`, { type, index: i });
      }
      return n;
    });
    if (counts.global !== 1) throw invalid(`expected exactly one global node, got ${counts.global}`, { global: counts.global });
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

  #apply(graph: PolicyGraph, plan: ForwardPlan): GnnTensors {
    const { gatHidden } = this.config;
    const edges: EdgeTensors | undefined =
      plan.edges === 0
        ? undefined
        : {
            srcRow: tf.tensor1d(plan.srcRow, 'int32'),
            dstNode: tf.tensor1d(plan.dstNode, 'int32'),
            dstSegment: tf.tensor1d(plan.dstSegment, 'int32'),
            edgeSelect: tf.tensor1d(plan.edgeSelect, 'int32'),
            sageWeight: tf.tensor2d(plan.sageWeight, [plan.edges, 1]),
            relationScale: tf.tensor2d(plan.relationScale, [plan.edges, 1]),
            attrs: tf.tensor2d(plan.attrs, [plan.edges, EDGE_ATTR_DIM]),
          };
    const nodeType = tf.tensor1d(plan.nodeType, 'int32');
    const ctx: LayerContext = { plan, edges, nodeType };
    let h = this.#encode(graph, ctx);
    h = residual(gelu(this.#sage(1, h, ctx)), h);
    h = residual(gelu(this.#sage(2, h, ctx)), h);
    h = residual(gelu(this.#gat(1, h, ctx)), h);
    h = residual(gelu(this.#gat(2, h, ctx)), h);

    const g = tf.slice(h, [0, 0], [1, gatHidden]); // the global node: readout (§7.2 item 5)
    const linear = (x: tf.Tensor2D, prefix: string): tf.Tensor2D => tf.add(tf.matMul(x, this.#v(`${prefix}/w`)), this.#v(`${prefix}/b`));
    const mlp = (prefix: string): tf.Tensor2D => tf.tanh(linear(gelu(linear(g, `${prefix}/l1`)), `${prefix}/l2`));
    const row = (x: tf.Tensor): tf.Tensor1D => tf.reshape(x, [-1]);
    const scores = (type: NodeType, prefix: string): tf.Tensor1D =>
      plan.counts[type] === 0 ? tf.zeros([0]) : row(linear(tf.slice(h, [plan.offsets[type], 0], [plan.counts[type], gatHidden]), prefix));
    return {
      actionLogits: row(linear(g, 'head/action')),
      paramVector: row(mlp('head/param')),
      blendLogits: row(linear(g, 'head/blend')),
      schedule: row(mlp('head/schedule')),
      riskLogits: row(linear(g, 'head/risk')),
      value: row(linear(g, 'head/value')),
      breakerLogits: row(linear(g, 'head/breaker')),
      seedScores: scores('seed', 'head/seed_score'),
      siteScores: scores('site', 'head/site_score'),
      blueprintScores: scores('blueprint', 'head/blueprint_score'),
    };
  }

  /** Encoders: per type Linear, then GELU and a per-type affine LayerNorm on all rows (§7.2 item 1). */
  #encode(graph: PolicyGraph, ctx: LayerContext): tf.Tensor2D {
    const { plan } = ctx;
    const parts: tf.Tensor2D[] = [];
    for (const type of NODE_TYPES) {
      const rows = plan.counts[type];
      if (rows === 0) continue;
      const x = tf.tensor2d(graph.nodes[type].features, [rows, this.config.nodeDims[type]]);
      parts.push(tf.add(tf.matMul(x, this.#v(`encoder/${type}/w`)), this.#v(`encoder/${type}/b`)));
    }
    const y = gelu(concatRows(parts));
    const { mean, variance } = tf.moments(y, -1, true);
    const normed = tf.mul(tf.sub(y, mean), tf.rsqrt(tf.add(variance, LAYER_NORM_EPSILON)));
    const gamma = tf.gather(tf.stack(NODE_TYPES.map((t) => this.#v(`encoder/${t}/ln_gamma`))), ctx.nodeType);
    const beta = tf.gather(tf.stack(NODE_TYPES.map((t) => this.#v(`encoder/${t}/ln_beta`))), ctx.nodeType);
    return tf.add(tf.mul(normed, gamma), beta);
  }

  /** Rows of `h` of one type. */
  #rows(h: tf.Tensor2D, type: NodeType, plan: ForwardPlan): tf.Tensor2D {
    return tf.slice(h, [plan.offsets[type], 0], [plan.counts[type], h.shape[1]]);
  }

  /**
   * SAGE (PyG 2.6 SAGEConv, mean aggregation) with the relation mean per dst type:
   * `(1/R)·Σ_r (W_l^r·mean_{j∈N_r(i)} x_j + b^r + W_r^r·x_i)`; a relation without edges
   * still contributes `W_r^r·x_i + b^r`.
   */
  #sage(layer: number, h: tf.Tensor2D, ctx: LayerContext): tf.Tensor2D {
    const { plan, edges } = ctx;
    const { hidden } = this.config;
    const { bySrc } = this.#layout;
    const rootParts: tf.Tensor2D[] = [];
    const tables: tf.Tensor2D[] = [];
    for (const type of NODE_TYPES) {
      const n = plan.counts[type];
      if (n === 0) continue;
      const x = this.#rows(h, type, plan);
      rootParts.push(tf.add(tf.matMul(x, this.#v(`sage${layer}/root/${type}`)), this.#v(`sage${layer}/bias/${type}`)));
      const r = bySrc[type].length;
      // W_l·x_j for every (node, relation from this type); mean_j W_l x_j = W_l mean_j x_j.
      if (r > 0 && edges !== undefined) tables.push(tf.reshape(tf.matMul(x, this.#v(`sage${layer}/neigh/${type}`)), [n * r, hidden]));
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
  #gat(layer: number, h: tf.Tensor2D, ctx: LayerContext): tf.Tensor2D {
    const { plan, edges } = ctx;
    const { heads, gatHidden } = this.config;
    const { bySrc, byDst } = this.#layout;
    const width = heads * gatHidden;
    const bias = tf.gather(tf.stack(NODE_TYPES.map((t) => this.#v(`gat${layer}/bias/${t}`))), ctx.nodeType) as tf.Tensor2D;
    if (edges === undefined) return bias;
    const values: tf.Tensor2D[] = [];
    const srcScores: tf.Tensor2D[] = [];
    const dstScores: tf.Tensor2D[] = [];
    for (const type of NODE_TYPES) {
      const n = plan.counts[type];
      if (n === 0) continue;
      const x = this.#rows(h, type, plan);
      const rSrc = bySrc[type].length;
      if (rSrc > 0) {
        const projected = tf.matMul(x, this.#v(`gat${layer}/src/${type}`)); // [n, R_src·heads·C]
        values.push(tf.reshape(projected, [n * rSrc, width]));
        const perHead = tf.mul(tf.reshape(projected, [n, rSrc, heads, gatHidden]), this.#v(`gat${layer}/att_src/${type}`));
        srcScores.push(tf.reshape(tf.sum(perHead, -1), [n * rSrc, heads]));
      }
      dstScores.push(tf.reshape(tf.matMul(x, this.#v(`gat${layer}/att_dst/${type}`)), [n * byDst[type].length, heads]));
    }
    const relationCount = this.config.relations.length;
    const edgeScores = tf.gather(
      tf.reshape(tf.matMul(edges.attrs, this.#v(`gat${layer}/att_edge`)), [plan.edges * relationCount, heads]),
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
}

/** Per-forward index tensors (created inside the forward's tidy). */
interface EdgeTensors {
  readonly srcRow: tf.Tensor1D;
  readonly dstNode: tf.Tensor1D;
  readonly dstSegment: tf.Tensor1D;
  readonly edgeSelect: tf.Tensor1D;
  readonly sageWeight: tf.Tensor2D;
  readonly relationScale: tf.Tensor2D;
  readonly attrs: tf.Tensor2D;
}

interface LayerContext {
  readonly plan: ForwardPlan;
  /** Undefined when the graph has no edges at all. */
  readonly edges: EdgeTensors | undefined;
  readonly nodeType: tf.Tensor1D;
}

function relationLayout(relations: readonly RelationSpec[]): RelationLayout {
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

/** Exact GELU, `0.5·x·(1 + erf(x/√2))` (reference §7.2 item 1). */
function gelu<T extends tf.Tensor>(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** `y + x` when the widths match (§7.2 item 3), else `y`. */
function residual(y: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor2D {
  return y.shape[1] === x.shape[1] ? tf.add(y, x) : y;
}

function concatRows(parts: tf.Tensor2D[]): tf.Tensor2D {
  return parts.length === 1 ? (parts[0] as tf.Tensor2D) : tf.concat(parts, 0);
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

/** What the policy decided, decoded from a {@link GnnOutput} (reference §8.2). */
export interface PolicyDecision {
  /** The chosen action; reserved indices decode to WAIT. */
  readonly action: PolicyAction;
  /** The raw argmax of the action logits (may be a reserved index). */
  readonly actionIndex: number;
  /** Softmax probability of `actionIndex`. */
  readonly actionProbability: number;
  /** `paramVector[0]`: the optimizer delta (tanh, in [−1, 1]). */
  readonly paramDelta: number;
  /** The whole param vector. */
  readonly paramVector: Float32Array;
  /** Argmax of the blend logits. */
  readonly blendIndex: number;
  /** The leyline blend mode of `blendIndex`. */
  readonly blendMode: BlendMode;
  /** Argmax of the risk logits. */
  readonly riskIndex: number;
  /** Softmax probability of `riskIndex` (so in [1/riskClasses, 1]). */
  readonly riskProbability: number;
  /** Schedule start, fraction of the blending window in [0, 1]. */
  readonly scheduleStart: number;
  /** Schedule end, in [scheduleStart, 1]. */
  readonly scheduleEnd: number;
  /** Value estimate. */
  readonly value: number;
  /** sigmoid(breaker open logit). */
  readonly breakerOpenScore: number;
  /** sigmoid(breaker close logit). */
  readonly breakerCloseScore: number;
  /** Best `seed` node row, or undefined when there are no (finitely scored) seeds. */
  readonly seedIndex: number | undefined;
  /** Best `site` node row, or undefined. */
  readonly siteIndex: number | undefined;
  /** Best `blueprint` node row, or undefined. */
  readonly blueprintIndex: number | undefined;
}

/** Index of the first maximum among finite values; undefined when there is none. */
export function argmaxFinite(values: ArrayLike<number>): number | undefined {
  let best: number | undefined;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i] as number;
    if (!Number.isFinite(v)) continue;
    if (best === undefined || v > bestValue) {
      best = i;
      bestValue = v;
    }
  }
  return best;
}

function softmaxAt(logits: ArrayLike<number>, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i += 1) max = Math.max(max, logits[i] as number);
  let sum = 0;
  for (let i = 0; i < logits.length; i += 1) sum += Math.exp((logits[i] as number) - max);
  return Math.exp((logits[index] as number) - max) / sum;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

/** Decodes outputs into a decision: argmaxes, probabilities, §8.2 schedule, best nodes. */
export function decodeOutput(output: GnnOutput): PolicyDecision {
  const actionIndex = argmaxFinite(output.actionLogits) ?? PolicyAction.WAIT;
  const action = actionIndex < POLICY_ACTION_COUNT ? (actionIndex as PolicyAction) : PolicyAction.WAIT;
  const blendIndex = argmaxFinite(output.blendLogits) ?? 0;
  const riskIndex = argmaxFinite(output.riskLogits) ?? 0;
  let start = clamp01(((output.schedule[0] ?? -1) + 1) / 2);
  let end = clamp01(((output.schedule[1] ?? -1) + 1) / 2);
  if (end < start) [start, end] = [end, start];
  return {
    action,
    actionIndex,
    actionProbability: softmaxAt(output.actionLogits, actionIndex),
    paramDelta: output.paramVector[0] ?? 0,
    paramVector: output.paramVector,
    blendIndex,
    blendMode: BLEND_HEAD_MODES[blendIndex] ?? BlendMode.CONVEX,
    riskIndex,
    riskProbability: softmaxAt(output.riskLogits, riskIndex),
    scheduleStart: start,
    scheduleEnd: end,
    value: output.value,
    breakerOpenScore: sigmoid(output.breakerLogits[0] ?? 0),
    breakerCloseScore: sigmoid(output.breakerLogits[1] ?? 0),
    seedIndex: argmaxFinite(output.seedScores),
    siteIndex: argmaxFinite(output.siteScores),
    blueprintIndex: argmaxFinite(output.blueprintScores),
  };
}
