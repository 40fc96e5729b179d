/**
 * The blocks a host is built from: dense, 2-D convolution, max-pool and flatten. A block
 * knows its per-example input and output shapes (batch excluded), owns its variables and
 * maps a batch `[batch, ...inputShape]` to `[batch, ...outputShape]`.
 *
 * Variables are named `<hostId>/<block>/<param>` (`kernel`, `bias`): checkpoints and
 * optimizer slots are restored by name (`src/tensor/weights-io.ts`), so these names are
 * part of a host's persistent format.
 */
import { ErrorCode, EsperError, optionChecks, type OptionChecks } from '../../core/index.js';
import { Initializer, initVariable, tf, type Rng } from '../../tensor/index.js';

/** Activation functions a block may end with. */
export const Activation = {
  LINEAR: 'linear',
  RELU: 'relu',
  TANH: 'tanh',
  SIGMOID: 'sigmoid',
} as const;

/** Union of {@link Activation} values. */
export type Activation = (typeof Activation)[keyof typeof Activation];

/** Kinds of block. */
export const BlockKind = {
  DENSE: 'dense',
  CONV2D: 'conv2d',
  MAX_POOL: 'maxPool',
  FLATTEN: 'flatten',
} as const;

/** Union of {@link BlockKind} values. */
export type BlockKind = (typeof BlockKind)[keyof typeof BlockKind];

/** Convolution / pooling padding (TensorFlow semantics). */
export type Padding = 'same' | 'valid';

/** The square window of a conv2d (its kernel) or max-pool block. */
export interface BlockWindow {
  /** Side of the window, in pixels. */
  readonly size: number;
  /** Stride along both spatial axes, in pixels. */
  readonly stride: number;
  readonly padding: Padding;
}

/** A materialised block of a host. */
export interface HostBlock {
  readonly name: string;
  readonly kind: BlockKind;
  /** Per-example input shape (batch excluded). */
  readonly inputShape: readonly number[];
  /** Per-example output shape (batch excluded). */
  readonly outputShape: readonly number[];
  /** Variables owned by the block, in a fixed order (kernel, then bias). */
  readonly variables: readonly tf.Variable[];
  /** `[batch, ...inputShape]` → `[batch, ...outputShape]`. Allocates: call inside `tf.tidy`. */
  apply(x: tf.Tensor): tf.Tensor;
  /** Conv2d and max-pool blocks: the window (kernel or pool). */
  readonly window?: BlockWindow;
  /** Dense and conv2d blocks: the activation they end with. */
  readonly activation?: Activation;
  /**
   * A dense block's two halves, `apply(x) = activate(preActivation(x))` (dense blocks only):
   * a WIDEN site adds its contribution in between.
   */
  readonly dense?: LayerParts;
  /** A conv2d block's two halves, as {@link dense} (conv2d blocks only). */
  readonly conv?: LayerParts;
}

/** The parts of a weighted block `activation(x ⊛ kernel + bias)` (dense: a matrix product; conv2d: a convolution). */
export interface LayerParts {
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable | undefined;
  readonly activation: Activation;
  /** `x ⊛ kernel + bias`. Allocates: call inside `tf.tidy`. */
  preActivation(x: tf.Tensor): tf.Tensor;
  /** The block's activation applied to a pre-activation. */
  activate(z: tf.Tensor): tf.Tensor;
}

/**
 * A block before its variables exist: the builder checks shapes as blocks are added and
 * creates every variable at `build()`.
 */
export interface BlockSpec {
  readonly name: string;
  readonly kind: BlockKind;
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  /** As {@link HostBlock.window}. */
  readonly window?: BlockWindow;
  /** As {@link HostBlock.activation}. */
  readonly activation?: Activation;
  /** Creates the block's variables (named under `hostId`) from `rng`. */
  materialise(hostId: string, rng: Rng): HostBlock;
}

const ACTIVATIONS: ReadonlySet<string> = new Set(Object.values(Activation));

function applyActivation(x: tf.Tensor, activation: Activation): tf.Tensor {
  switch (activation) {
    case Activation.LINEAR:
      return x;
    case Activation.RELU:
      return tf.relu(x);
    case Activation.TANH:
      return tf.tanh(x);
    case Activation.SIGMOID:
      return tf.sigmoid(x);
    default: {
      const never: never = activation;
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `unknown activation '${String(never)}'`, { details: { field: 'activation' } });
    }
  }
}

/** The option checks of one block, named in errors (`block 'conv1' option units must be …`). */
function blockCheck(block: string): OptionChecks {
  return optionChecks(`block '${block}'`);
}

function assertActivation(activation: string, block: string): asserts activation is Activation {
  blockCheck(block).oneOf('activation', activation, [...ACTIVATIONS]);
}

function assertPositiveInteger(value: number, field: string, block: string): void {
  blockCheck(block).integer(field, value, { min: 1 });
}

function assertRank(shape: readonly number[], rank: number, kind: BlockKind, block: string): void {
  if (shape.length !== rank) {
    const hint = kind === BlockKind.DENSE ? ' (add a flatten block first)' : '';
    throw new EsperError(
      ErrorCode.INVALID_ARGUMENT,
      `block '${block}' (${kind}) needs a rank-${rank} per-example input, got [${shape.join(', ')}]${hint}`,
      { details: { field: 'inputShape', block } },
    );
  }
}

/** Initialiser suited to an activation: He for ReLU stacks, Glorot otherwise. */
export function defaultInitializer(activation: Activation): Initializer {
  return activation === Activation.RELU ? Initializer.HE_NORMAL : Initializer.GLOROT_UNIFORM;
}

/** Output length of a windowed op along one spatial axis (TensorFlow's formula). */
function windowedLength(input: number, window: number, stride: number, padding: Padding): number {
  return padding === 'same' ? Math.ceil(input / stride) : Math.ceil((input - window + 1) / stride);
}

/** Options of a dense block. */
export interface DenseSpecOptions {
  readonly name: string;
  readonly units: number;
  readonly activation: Activation;
  readonly initializer: Initializer;
  readonly useBias: boolean;
}

/** A dense block `act(x·W + b)`, `W: [in, units]`, on rank-1 per-example inputs. */
export function denseSpec(inputShape: readonly number[], options: DenseSpecOptions): BlockSpec {
  const { name, units, activation, initializer, useBias } = options;
  assertRank(inputShape, 1, BlockKind.DENSE, name);
  assertPositiveInteger(units, 'units', name);
  assertActivation(activation, name);
  const inputSize = inputShape[0] as number;
  return {
    name,
    kind: BlockKind.DENSE,
    inputShape: [inputSize],
    outputShape: [units],
    activation,
    materialise(hostId, rng) {
      const kernel = initVariable(`${hostId}/${name}/kernel`, initializer, [inputSize, units], rng);
      const bias = useBias ? createBias(kernel, `${hostId}/${name}/bias`, [units], rng) : undefined;
      const variables = bias === undefined ? [kernel] : [kernel, bias];
      const dense: LayerParts = {
        kernel,
        bias,
        activation,
        preActivation: (x) => {
          const z = tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D);
          return bias === undefined ? z : tf.add(z, bias);
        },
        activate: (z) => applyActivation(z, activation),
      };
      return {
        name,
        kind: BlockKind.DENSE,
        inputShape: [inputSize],
        outputShape: [units],
        activation,
        variables,
        apply: (x) => dense.activate(dense.preActivation(x)),
        dense,
      };
    },
  };
}

/** Options of a 2-D convolution block. */
export interface Conv2dSpecOptions {
  readonly name: string;
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly padding: Padding;
  readonly activation: Activation;
  readonly initializer: Initializer;
  readonly useBias: boolean;
}

/** A 2-D convolution block (NHWC, square kernel, `kernel: [k, k, in, filters]`). */
export function conv2dSpec(inputShape: readonly number[], options: Conv2dSpecOptions): BlockSpec {
  const { name, filters, kernelSize, strides, padding, activation, initializer, useBias } = options;
  assertRank(inputShape, 3, BlockKind.CONV2D, name);
  assertPositiveInteger(filters, 'filters', name);
  assertPositiveInteger(kernelSize, 'kernelSize', name);
  assertPositiveInteger(strides, 'strides', name);
  assertActivation(activation, name);
  assertPadding(padding, name);
  const [height, width, channels] = inputShape as [number, number, number];
  const outputShape = [windowedLength(height, kernelSize, strides, padding), windowedLength(width, kernelSize, strides, padding), filters];
  assertNonEmptyOutput(outputShape, name);
  const window: BlockWindow = { size: kernelSize, stride: strides, padding };
  return {
    name,
    kind: BlockKind.CONV2D,
    inputShape: [height, width, channels],
    outputShape,
    window,
    activation,
    materialise(hostId, rng) {
      const kernel = initVariable(`${hostId}/${name}/kernel`, initializer, [kernelSize, kernelSize, channels, filters], rng);
      const bias = useBias ? createBias(kernel, `${hostId}/${name}/bias`, [filters], rng) : undefined;
      const variables = bias === undefined ? [kernel] : [kernel, bias];
      const conv: LayerParts = {
        kernel,
        bias,
        activation,
        preActivation: (x) => {
          const z = tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, strides, padding);
          return bias === undefined ? z : tf.add(z, bias);
        },
        activate: (z) => applyActivation(z, activation),
      };
      return {
        name,
        kind: BlockKind.CONV2D,
        inputShape: [height, width, channels],
        outputShape,
        window,
        activation,
        variables,
        apply: (x) => conv.activate(conv.preActivation(x)),
        conv,
      };
    },
  };
}

/** Options of a max-pool block. */
export interface MaxPoolSpecOptions {
  readonly name: string;
  readonly poolSize: number;
  readonly strides: number;
  readonly padding: Padding;
}

/** A max-pool block over square windows (NHWC). */
export function maxPoolSpec(inputShape: readonly number[], options: MaxPoolSpecOptions): BlockSpec {
  const { name, poolSize, strides, padding } = options;
  assertRank(inputShape, 3, BlockKind.MAX_POOL, name);
  assertPositiveInteger(poolSize, 'poolSize', name);
  assertPositiveInteger(strides, 'strides', name);
  assertPadding(padding, name);
  const [height, width, channels] = inputShape as [number, number, number];
  const outputShape = [windowedLength(height, poolSize, strides, padding), windowedLength(width, poolSize, strides, padding), channels];
  assertNonEmptyOutput(outputShape, name);
  const block: HostBlock = {
    name,
    kind: BlockKind.MAX_POOL,
    inputShape: [height, width, channels],
    outputShape,
    window: { size: poolSize, stride: strides, padding },
    variables: [],
    apply: (x) => tf.maxPool(x as tf.Tensor4D, poolSize, strides, padding),
  };
  return { ...block, materialise: () => block };
}

/** A block reshaping each example to a vector. */
export function flattenSpec(inputShape: readonly number[], name: string): BlockSpec {
  const size = inputShape.reduce((a, b) => a * b, 1);
  const block: HostBlock = {
    name,
    kind: BlockKind.FLATTEN,
    inputShape: [...inputShape],
    outputShape: [size],
    variables: [],
    apply: (x) => tf.reshape(x, [x.shape[0] as number, size]),
  };
  return { ...block, materialise: () => block };
}

function assertPadding(padding: string, block: string): void {
  blockCheck(block).oneOf('padding', padding, ['same', 'valid']);
}

function assertNonEmptyOutput(shape: readonly number[], block: string): void {
  if (shape.some((d) => d < 1)) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `block '${block}': output shape [${shape.join(', ')}] is empty (input too small)`, {
      details: { field: 'inputShape', block },
    });
  }
}

/** Creates a zero bias; frees `kernel` if that fails, so a half-built block leaks nothing. */
function createBias(kernel: tf.Variable, name: string, shape: readonly number[], rng: Rng): tf.Variable {
  try {
    return initVariable(name, Initializer.ZEROS, shape, rng);
  } catch (error) {
    kernel.dispose();
    throw error;
  }
}
