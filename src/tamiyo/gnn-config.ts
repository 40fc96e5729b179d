/** The GNN policy's action space and architecture config (reference prototype-tamiyo-simic §7.1, §8.1). */
import { optionChecks } from '../core/index.js';
import { BlendMode } from '../leyline/index.js';
import { NODE_FEATURE_DIMS, NODE_TYPES, type NodeType, type RelationSpec } from './graph-types.js';

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

const RELATION_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Architecture of a `TamiyoGnn`. */
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

/** Largest width or count a config may name. */
const MAX_CONFIG_DIM = 1 << 16;

/** Throws `INVALID_ARGUMENT` naming the first bad field of `config`. */
export function validateGnnConfig(config: GnnConfig): void {
  const check = optionChecks('GnnConfig');
  const positive = (value: unknown, field: string, min = 1): void => {
    check.integer(field, value, { min, max: MAX_CONFIG_DIM });
  };
  positive(config.hidden, 'hidden');
  positive(config.gatHidden, 'gatHidden');
  positive(config.heads, 'heads');
  positive(config.actionClasses, 'actionClasses', POLICY_ACTION_COUNT);
  positive(config.blendClasses, 'blendClasses');
  check.integer('blendClasses', config.blendClasses, { min: 1, max: BLEND_HEAD_MODES.length });
  positive(config.riskClasses, 'riskClasses');
  positive(config.paramVector, 'paramVector');
  positive(config.scheduleOutputs, 'scheduleOutputs', 2);
  if (typeof config.nodeDims !== 'object' || config.nodeDims === null) check.fail('nodeDims', 'an object', config.nodeDims);
  for (const type of NODE_TYPES) positive(config.nodeDims[type], `nodeDims.${type}`);
  if (Object.keys(config.nodeDims).length !== NODE_TYPES.length)
    check.fail('nodeDims', `keyed by the node types ${NODE_TYPES.join(', ')} only`, config.nodeDims);
  if (!Array.isArray(config.relations)) check.fail('relations', 'an array', config.relations);
  const keys = new Set<string>();
  const types = new Set<string>(NODE_TYPES);
  const dsts = new Set<NodeType>();
  for (const r of config.relations) {
    if (typeof r?.name !== 'string' || !RELATION_NAME.test(r.name))
      check.fail('relations', `relation names matching ${String(RELATION_NAME)}`, r?.name);
    if (!types.has(r.src) || !types.has(r.dst))
      check.fail('relations', 'relations between known node types', `${r.src}-${r.name}-${r.dst}`);
    const key = relationKey(r);
    if (keys.has(key)) check.fail('relations', 'distinct relations', key);
    keys.add(key);
    dsts.add(r.dst);
  }
  for (const type of NODE_TYPES) {
    if (!dsts.has(type)) check.fail('relations', 'relations into every node type', `none into ${type}`);
  }
}
