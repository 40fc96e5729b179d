/**
 * A policy's input graph and its sampled decision on the wire (Leyline `PolicyGraphSnapshot`
 * and `DecisionContext`, carried by a field report), and back. Simic learns from the graph
 * exactly as the policy read it: the graph builder's normaliser keeps running statistics,
 * so the same packet would not give the same features later, and the graph is shipped
 * rather than rebuilt.
 *
 * Feature values are float32 in the graph and on the wire, so the round trip is exact;
 * the behaviour log-probability and value estimate are rounded to float32. Feature coverage
 * travels as its average only (the per-key maps are telemetry, not an input of the network).
 */
import { create } from '@bufbuild/protobuf';
import { ErrorCode, EsperError } from '../core/index.js';
import {
  DecisionContextSchema,
  PolicyGraphEdgeSetSchema,
  PolicyGraphNodeSetSchema,
  PolicyGraphSnapshotSchema,
  type DecisionContext,
  type PolicyGraphSnapshot,
} from '../leyline/index.js';
import { PolicyAction } from './gnn-config.js';
import type { SampledDecision } from './gnn-policy.js';
import { SAMPLED_ACTIONS, type PolicyChoice, type SampledAction } from './gnn-sampling.js';
import {
  EDGE_ATTR_DIM,
  NODE_FEATURE_DIMS,
  NODE_TYPES,
  type EdgeSet,
  type NodeSet,
  type NodeType,
  type PolicyGraph,
} from './graph-types.js';

/** The wire form of `graph`. */
export function snapshotOfGraph(graph: PolicyGraph): PolicyGraphSnapshot {
  return create(PolicyGraphSnapshotSchema, {
    nodes: NODE_TYPES.map((type) =>
      create(PolicyGraphNodeSetSchema, { type, ids: [...graph.nodes[type].ids], features: Array.from(graph.nodes[type].features) }),
    ),
    edges: graph.edges.map((e) =>
      create(PolicyGraphEdgeSetSchema, {
        relation: e.relation.name,
        srcType: e.relation.src,
        dstType: e.relation.dst,
        src: Array.from(e.src),
        dst: Array.from(e.dst),
        attrs: Array.from(e.attrs),
      }),
    ),
    featureCoverage: graph.coverage.average,
  });
}

function invalid(source: string, message: string, field: string): EsperError {
  return new EsperError(ErrorCode.TAMIYO_GRAPH_INVALID, `${source}: ${message}`, { details: { path: source, field } });
}

function isNodeType(value: string): value is NodeType {
  return (NODE_TYPES as readonly string[]).includes(value);
}

function finiteFloats(values: readonly number[], source: string, field: string): Float32Array {
  const out = Float32Array.from(values);
  for (let i = 0; i < out.length; i += 1) {
    if (!Number.isFinite(out[i])) throw invalid(source, `${field}[${i}] is not finite`, field);
  }
  return out;
}

/**
 * The graph a snapshot carries, checked: every node type exactly once, feature rows of the
 * type's width, exactly one global node, edge endpoints of known types and within their node
 * sets, attribute rows of width 3, every value finite.
 * @param source Named in errors (a report id). @default 'snapshot'
 * @throws EsperError TAMIYO_GRAPH_INVALID naming the bad field.
 */
export function graphOfSnapshot(snapshot: PolicyGraphSnapshot, source = 'snapshot'): PolicyGraph {
  const nodes = new Map<NodeType, NodeSet>();
  for (const [index, set] of snapshot.nodes.entries()) {
    const field = `nodes[${index}]`;
    if (!isNodeType(set.type)) throw invalid(source, `unknown node type ${JSON.stringify(set.type)}`, `${field}.type`);
    if (nodes.has(set.type)) throw invalid(source, `node type ${set.type} appears twice`, `${field}.type`);
    const width = NODE_FEATURE_DIMS[set.type];
    if (set.features.length !== set.ids.length * width) {
      throw invalid(
        source,
        `${set.type} has ${set.features.length} features for ${set.ids.length} nodes of width ${width}`,
        `${field}.features`,
      );
    }
    nodes.set(set.type, { ids: [...set.ids], features: finiteFloats(set.features, source, `${field}.features`) });
  }
  for (const type of NODE_TYPES) if (!nodes.has(type)) throw invalid(source, `node type ${type} is missing`, 'nodes');
  if ((nodes.get('global') as NodeSet).ids.length !== 1) throw invalid(source, 'a graph has exactly one global node', 'nodes');
  const edges: EdgeSet[] = snapshot.edges.map((set, index) => {
    const field = `edges[${index}]`;
    const { srcType, dstType } = set;
    if (!isNodeType(srcType) || !isNodeType(dstType)) throw invalid(source, `relation ${set.relation} joins unknown node types`, field);
    if (set.src.length !== set.dst.length)
      throw invalid(source, `relation ${set.relation} has ${set.src.length} sources, ${set.dst.length} destinations`, field);
    if (set.attrs.length !== set.src.length * EDGE_ATTR_DIM)
      throw invalid(source, `relation ${set.relation} has attribute rows of the wrong width`, `${field}.attrs`);
    const within = (rows: readonly number[], type: NodeType, end: string): Int32Array => {
      const count = (nodes.get(type) as NodeSet).ids.length;
      const out = Int32Array.from(rows);
      if (out.some((row) => row < 0 || row >= count))
        throw invalid(source, `relation ${set.relation} has a ${end} row outside its ${count} ${type} nodes`, `${field}.${end}`);
      return out;
    };
    return {
      relation: { name: set.relation, src: srcType, dst: dstType },
      src: within(set.src, srcType, 'src'),
      dst: within(set.dst, dstType, 'dst'),
      attrs: finiteFloats(set.attrs, source, `${field}.attrs`),
    };
  });
  return {
    nodes: Object.fromEntries(NODE_TYPES.map((type) => [type, nodes.get(type) as NodeSet])) as Record<NodeType, NodeSet>,
    edges,
    coverage: { byKey: new Map(), byGroup: new Map(), average: snapshot.featureCoverage },
  };
}

/** The wire form of a sampling policy's decision (`policyVersion`, step and epoch are the report's). */
export function decisionContextOf(decision: Pick<SampledDecision, 'graph' | 'choice' | 'logProb' | 'value'>): DecisionContext {
  const { choice } = decision;
  return create(DecisionContextSchema, {
    graph: snapshotOfGraph(decision.graph),
    action: choice.action,
    ...(choice.siteIndex === undefined ? {} : { siteIndex: choice.siteIndex }),
    ...(choice.blueprintIndex === undefined ? {} : { blueprintIndex: choice.blueprintIndex }),
    ...(choice.seedIndex === undefined ? {} : { seedIndex: choice.seedIndex }),
    behaviourLogProb: decision.logProb,
    valueEstimate: decision.value,
  });
}

/** What a decision context says: the graph, the choice, its log-probability and the value estimate. */
export interface DecodedDecisionContext {
  readonly graph: PolicyGraph;
  readonly choice: PolicyChoice;
  readonly logProb: number;
  readonly value: number;
}

/**
 * The graph and choice a {@link DecisionContext} carries, checked: an action among
 * {@link SAMPLED_ACTIONS}, a germinate with a site and blueprint row and a cull with a seed
 * row inside the graph's node sets, a finite log-probability ≤ 0 and a finite value.
 * @throws EsperError TAMIYO_GRAPH_INVALID naming the bad field.
 */
export function decodeDecisionContext(context: DecisionContext, source = 'decision context'): DecodedDecisionContext {
  if (context.graph === undefined) throw invalid(source, 'has no graph', 'graph');
  const graph = graphOfSnapshot(context.graph, source);
  const action = context.action as SampledAction;
  if (!(SAMPLED_ACTIONS as readonly number[]).includes(action))
    throw invalid(source, `action ${context.action} is not wait, germinate or cull`, 'action');
  const row = (value: number | undefined, type: NodeType, field: string): number => {
    if (value === undefined || value >= graph.nodes[type].ids.length)
      throw invalid(source, `${field} is not a row of the ${type} nodes`, field);
    return value;
  };
  const choice: PolicyChoice =
    action === PolicyAction.GERMINATE
      ? {
          action,
          siteIndex: row(context.siteIndex, 'site', 'site_index'),
          blueprintIndex: row(context.blueprintIndex, 'blueprint', 'blueprint_index'),
        }
      : action === PolicyAction.CULL
        ? { action, seedIndex: row(context.seedIndex, 'seed', 'seed_index') }
        : { action };
  if (!(Number.isFinite(context.behaviourLogProb) && context.behaviourLogProb <= 0)) {
    throw invalid(source, `behaviour_log_prob ${context.behaviourLogProb} is not a log-probability`, 'behaviour_log_prob');
  }
  if (!Number.isFinite(context.valueEstimate)) throw invalid(source, 'value_estimate is not finite', 'value_estimate');
  return { graph, choice, logProb: context.behaviourLogProb, value: context.valueEstimate };
}
