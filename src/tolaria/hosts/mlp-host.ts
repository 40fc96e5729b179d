/**
 * The MLP host family: dense ReLU hidden layers and a linear head producing the logits.
 * Each hidden layer `hidden<i>` has a DENSE seed site `hidden<i>` (after the layer: a seed
 * adds to its activation) and its WIDEN sites (a seed adds units to the layer, feeding the
 * next layer's pre-activation): `hidden<i>.widen`, and with `widenSlots: n` also
 * `hidden<i>.widen2` … `hidden<i>.widen<n>` — a seed keeps its site for the run (a fossil
 * is part of the host), so a layer grows as often as it has slots. The bench model
 * is 784-256-256-10: `mlpHost({ inputSize: 784, seed })`.
 */
import { ErrorCode, EsperError, optionChecks } from '../../core/index.js';
import { Activation } from './blocks.js';
import type { BlockHost } from './block-host.js';
import { HostBuilder } from './host-builder.js';

/** Options shared by both ways of giving an {@link mlpHost} its input. */
export interface MlpHostCommonOptions {
  /**
   * Hidden layer widths, in units; hidden layer `i` (from 1) has seed sites `hidden<i>`
   * (DENSE) and `hidden<i>.widen` (WIDEN, see {@link widenSlots}).
   * @default [256, 256]
   */
  readonly hidden?: readonly number[];
  /**
   * WIDEN sites (growth slots) per hidden layer: `hidden<i>.widen`, `hidden<i>.widen2`, …,
   * `hidden<i>.widen<n>`, in that order. Each holds one seed for the run, so a layer can
   * be widened this many times.
   * @default 1
   */
  readonly widenSlots?: number;
  /**
   * Number of classes (logits).
   * @default 10
   */
  readonly numClasses?: number;
  /**
   * Give every dense layer (hidden and head) a bias; `false` builds the weights-only MLP of
   * GradMax's student–teacher protocol.
   * @default true
   */
  readonly bias?: boolean;
  /** Seed of the weight initialisation (non-negative safe integer). */
  readonly seed: number;
  /**
   * Variable-name prefix; unique among live hosts.
   * @default 'mlp'
   */
  readonly hostId?: string;
}

/**
 * Options of {@link mlpHost}: either a vector `inputSize`, or an `inputShape` of any rank
 * (an image-shaped input is flattened by a first `flatten` block).
 */
export type MlpHostOptions = MlpHostCommonOptions &
  (
    | { readonly inputSize: number; readonly inputShape?: undefined }
    | { readonly inputShape: readonly number[]; readonly inputSize?: undefined }
  );

/** Defaults of {@link MlpHostOptions}. */
export const MLP_HOST_DEFAULTS = {
  hidden: [256, 256],
  numClasses: 10,
  bias: true,
  hostId: 'mlp',
  widenSlots: 1,
} as const;

/** Builds an MLP host (family `mlp`). */
export function mlpHost(options: MlpHostOptions): BlockHost {
  const inputShape = resolveInputShape(options);
  const hidden = options.hidden ?? MLP_HOST_DEFAULTS.hidden;
  let builder = new HostBuilder({ hostId: options.hostId ?? MLP_HOST_DEFAULTS.hostId, family: 'mlp', inputShape, seed: options.seed });
  if (inputShape.length > 1) builder = builder.flatten({ name: 'flatten' });
  const useBias = options.bias ?? MLP_HOST_DEFAULTS.bias;
  const slots = optionChecks('mlpHost').integer('widenSlots', options.widenSlots ?? MLP_HOST_DEFAULTS.widenSlots, { min: 1 });
  hidden.forEach((units, i) => {
    const name = `hidden${i + 1}`;
    builder = builder.dense(units, Activation.RELU, { name, useBias }).site(name);
    for (let slot = 1; slot <= slots; slot += 1) builder = builder.widenSite(widenSiteId(name, slot));
  });
  return builder.dense(options.numClasses ?? MLP_HOST_DEFAULTS.numClasses, Activation.LINEAR, { name: 'head', useBias }).build();
}

/** The id of WIDEN slot `slot` (from 1) of hidden layer `layer`: `hidden1.widen`, `hidden1.widen2`, … */
export function widenSiteId(layer: string, slot: number): string {
  return slot === 1 ? `${layer}.widen` : `${layer}.widen${slot}`;
}

function resolveInputShape(options: MlpHostOptions): readonly number[] {
  if (options.inputSize !== undefined && options.inputShape === undefined) return [options.inputSize];
  if (options.inputShape !== undefined && options.inputSize === undefined) return options.inputShape;
  throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'mlpHost: give exactly one of inputSize and inputShape', {
    details: { field: 'inputSize' },
  });
}
