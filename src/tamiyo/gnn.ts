/**
 * Tamiyo's learned policy: a heterogeneous graph neural network over a {@link PolicyGraph}
 * (reference prototype-tamiyo-simic §7.2), written with functional tfjs ops — per-type
 * encoders, two hetero SAGE and two hetero GAT layers (GELU and a residual after each),
 * readout at the `global` node, graph-level heads and per-node seed, site and blueprint
 * scores. Eval mode only (training happens offline in Simic), so inference is
 * deterministic. Sizes and their measurements, and the departures from the reference:
 * docs/architecture.md (Tamiyo).
 */
import { ErrorCode, EsperError } from '../core/index.js';
import { tf, type Rng } from '../tensor/index.js';
import { validateGnnConfig, type GnnConfig } from './gnn-config.js';
import { GnnInference } from './gnn-inference.js';
import { initialWeights } from './gnn-init.js';
import { encode, gat, gelu, residual, sage, type EdgeTensors, type GnnWeights, type LayerContext } from './gnn-layers.js';
import type { GnnOutput, GnnTensors } from './gnn-output.js';
import { planForward, relationLayout, type ForwardPlan, type RelationLayout } from './gnn-plan.js';
import { EDGE_ATTR_DIM, type NodeType, type PolicyGraph } from './graph-types.js';
import type { GraphBatch } from './gnn-batch.js';

/**
 * A batched forward pass's outputs (the caller owns them): graph-level heads one row per
 * graph, node scores over the batch's rows of each type (`GraphBatch.graphOf` says whose).
 */
export interface GnnBatchTensors {
  /** `[graphs, actionClasses]`. */
  readonly actionLogits: tf.Tensor2D;
  /** `[graphs]`. */
  readonly value: tf.Tensor1D;
  readonly seedScores: tf.Tensor1D;
  readonly siteScores: tf.Tensor1D;
  readonly blueprintScores: tf.Tensor1D;
}

let nextInstance = 0;

/**
 * The heterogeneous GNN policy. Variables are created from `rng` in a fixed order
 * (`gnn-init.ts` lists their layout), so the same config and seed give bit-identical
 * weights; {@link TamiyoGnn.forward} is deterministic.
 */
export class TamiyoGnn {
  /** The validated architecture. */
  readonly config: GnnConfig;
  readonly #scope: string;
  readonly #variables = new Map<string, tf.Variable>();
  readonly #layout: RelationLayout;
  readonly #weights: GnnWeights;
  readonly #inference: GnnInference;
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
    this.#weights = { config: this.config, layout: this.#layout, v: (logical) => this.#v(logical) };
    this.#inference = new GnnInference(this.config, this.#layout, () => this.#variables);
    try {
      initialWeights(this.config, this.#layout, rng, (logical, shape, values) => this.#add(logical, shape, values));
    } catch (error) {
      this.dispose();
      throw error;
    }
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
    this.#inference.dispose();
    for (const v of this.#variables.values()) v.dispose();
  }

  /**
   * One deterministic forward pass (eval mode) returning plain arrays: the numbers
   * {@link TamiyoGnn.apply} gives, to float32 rounding, by the latency-built inference
   * pass of `gnn-inference.ts` (its weights cached until a variable changes). Leaves no
   * tensors behind. Throws `TAMIYO_GRAPH_INVALID` for a graph that does not fit the config.
   */
  forward(graph: PolicyGraph): GnnOutput {
    this.#assertLive();
    return this.#inference.run(graph, planForward(graph, this.config, this.#layout));
  }

  /**
   * The forward pass as tensors, for training (the caller disposes them, or calls this
   * inside `tf.tidy`). Differentiable with respect to {@link TamiyoGnn.trainableVariables}.
   */
  apply(graph: PolicyGraph): GnnTensors {
    this.#assertLive();
    const plan = planForward(graph, this.config, this.#layout);
    // GnnTensors is an interface (no index signature), hence the casts through tidy.
    return tf.tidy(() => this.#apply(graph, plan) as unknown as tf.TensorContainer) as unknown as GnnTensors;
  }

  /**
   * The forward pass over a batch of graphs at once (what Simic trains with): per graph the
   * numbers {@link TamiyoGnn.apply} gives for it alone, in one pass. Differentiable; the
   * caller disposes the tensors or calls this inside `tf.tidy`.
   */
  applyBatch(batch: GraphBatch): GnnBatchTensors {
    this.#assertLive();
    const plan = planForward(batch.graph, this.config, this.#layout, batch.size);
    return tf.tidy(() => {
      const out = this.#apply(batch.graph, plan, batch.size);
      return {
        actionLogits: tf.reshape(out.actionLogits, [batch.size, this.config.actionClasses]),
        value: out.value,
        seedScores: out.seedScores,
        siteScores: out.siteScores,
        blueprintScores: out.blueprintScores,
      } as unknown as tf.TensorContainer;
    }) as unknown as GnnBatchTensors;
  }

  #assertLive(): void {
    if (this.#disposed) throw new EsperError(ErrorCode.INVALID_STATE, 'TamiyoGnn is disposed', { details: { scope: this.#scope } });
  }

  #v(logical: string): tf.Variable {
    const v = this.#variables.get(logical);
    if (v === undefined) throw new EsperError(ErrorCode.INVALID_STATE, `TamiyoGnn has no variable '${logical}'`);
    return v;
  }

  /** The forward pass over `graphs` united graphs (their global nodes are rows 0…graphs−1); graph heads flattened row-major. */
  #apply(graph: PolicyGraph, plan: ForwardPlan, graphs = 1): GnnTensors {
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
    const w = this.#weights;
    let h = encode(w, graph, ctx);
    h = residual(gelu(sage(w, 1, h, ctx)), h);
    h = residual(gelu(sage(w, 2, h, ctx)), h);
    h = residual(gelu(gat(w, 1, h, ctx)), h);
    h = residual(gelu(gat(w, 2, h, ctx)), h);

    const g = tf.slice(h, [0, 0], [graphs, gatHidden]); // the global nodes: readout (§7.2 item 5)
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
}
