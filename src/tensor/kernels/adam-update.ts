/**
 * One Adam step of one variable as a single kernel (`EsperAdamUpdate`). tfjs's Adam is
 * thirteen elementwise kernels per variable per step; on the MLP host they cost a quarter
 * of the step, and on small grown hosts, with many small variables, the per-kernel
 * dispatch dominates. Here one pass reads value, moments and gradient once and writes the
 * new three.
 *
 * The arithmetic is tfjs's Adam op for op in float32, so a step is bit-identical to
 * `tf.train.adam`'s:
 *
 *   m' = m·β₁ + g·(1−β₁)            v' = v·β₂ + g²·(1−β₂)
 *   value' = (m'/(1−β₁ᵗ)) / (√(v'/(1−β₂ᵗ)) + ε) · (−lr) + value
 *   β₁ᵗ' = β₁ᵗ·β₁                   β₂ᵗ' = β₂ᵗ·β₂
 *
 * On `wasm` the loop is a small SIMD module of ours (`adam.wat`, compiled into
 * `adam-wasm.gen.ts`) working on the backend's own memory, which it imports; a JS loop
 * with `Math.fround` after every operation (exactly float32 for +, −, ×, ÷ and √) was
 * slower than the thirteen XNNPACK kernels on large tensors. On the `cpu` oracle it is
 * that JS loop.
 *
 * Outputs are new tensors, which the caller assigns. Updating a value in place would keep
 * its data id, and the wasm backend's XNNPACK matmul and convolution operators cache the
 * weights they packed by data id: they would go on reading the old weights.
 *
 * It is an op of ours, not a patch of a stock kernel: registered for both backends
 * whenever the backend is set up, whether patches are on or off.
 */
import {
  engine,
  getKernel,
  registerKernel,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { ErrorCode, EsperError } from '../../core/index.js';
import { ADAM_WASM_BASE64 } from './adam-wasm.gen.js';
import { heapOffset, ownWasmFunction } from './own-wasm.js';
import { asKernelFunc, heapF32, WASM, type WasmKernelArgs } from './wasm-kernel-utils.js';

/** The kernel's name. */
export const ADAM_UPDATE = 'EsperAdamUpdate';

/** The step's hyper-parameters (attributes of the kernel). */
export interface AdamUpdateAttrs {
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
}

/** One variable's state and gradient (inputs of the kernel). */
export interface AdamUpdateInputs {
  readonly value: Tensor;
  readonly m: Tensor;
  readonly v: Tensor;
  readonly gradient: Tensor;
  /** `β₁ᵗ` of this variable, a scalar. */
  readonly accBeta1: Tensor;
  /** `β₂ᵗ` of this variable, a scalar. */
  readonly accBeta2: Tensor;
}

/** The new value, moments and products, as new tensors owned by the caller. */
export interface AdamUpdateOutputs {
  readonly value: Tensor;
  readonly m: Tensor;
  readonly v: Tensor;
  readonly accBeta1: Tensor;
  readonly accBeta2: Tensor;
}

/** Runs one Adam step of one variable on the current backend. */
export function adamUpdate(inputs: AdamUpdateInputs, attrs: AdamUpdateAttrs): AdamUpdateOutputs {
  const [value, m, v, accBeta1, accBeta2] = engine().runKernel(ADAM_UPDATE, { ...inputs }, { ...attrs }) as [
    Tensor,
    Tensor,
    Tensor,
    Tensor,
    Tensor,
  ];
  return { value, m, v, accBeta1, accBeta2 };
}

const INPUTS = ['value', 'm', 'v', 'gradient', 'accBeta1', 'accBeta2'] as const;
type Inputs = Record<(typeof INPUTS)[number], TensorInfo>;

const size = (info: TensorInfo): number => info.shape.reduce((n, d) => n * d, 1);

function checkInputs(inputs: Record<string, TensorInfo | undefined>): Inputs {
  for (const name of INPUTS) {
    const info = inputs[name];
    if (info === undefined || info.dtype !== 'float32') {
      throw new EsperError(ErrorCode.TENSOR_KERNEL_UNSUPPORTED, `${ADAM_UPDATE}: input '${name}' must be a float32 tensor`);
    }
  }
  const x = inputs as Inputs;
  const n = size(x.value);
  if (size(x.m) !== n || size(x.v) !== n || size(x.gradient) !== n || size(x.accBeta1) !== 1 || size(x.accBeta2) !== 1) {
    throw new EsperError(
      ErrorCode.TENSOR_KERNEL_UNSUPPORTED,
      `${ADAM_UPDATE}: value, moments and gradient must match, products be scalars`,
      {
        details: {
          value: n,
          m: size(x.m),
          v: size(x.v),
          gradient: size(x.gradient),
          accBeta1: size(x.accBeta1),
          accBeta2: size(x.accBeta2),
        },
      },
    );
  }
  return x;
}

const f = Math.fround;

/** The float32 constants of one step (tfjs makes each JS number a float32 scalar). */
function constants(attrs: AdamUpdateAttrs, accBeta1: number, accBeta2: number) {
  return {
    beta1: f(attrs.beta1),
    beta2: f(attrs.beta2),
    oneMinusBeta1: f(1 - attrs.beta1),
    oneMinusBeta2: f(1 - attrs.beta2),
    correction1: f(1 - accBeta1),
    correction2: f(1 - accBeta2),
    epsilon: f(attrs.epsilon),
    negLearningRate: f(-attrs.learningRate),
    nextAccBeta1: f(accBeta1 * f(attrs.beta1)),
    nextAccBeta2: f(accBeta2 * f(attrs.beta2)),
  };
}

/** The exported function of `adam.wat`. */
type AdamWasmFn = (
  value: number,
  m: number,
  v: number,
  gradient: number,
  outValue: number,
  outM: number,
  outV: number,
  n: number,
  beta1: number,
  beta2: number,
  oneMinusBeta1: number,
  oneMinusBeta2: number,
  correction1: number,
  correction2: number,
  epsilon: number,
  negLearningRate: number,
) => void;

function adamWasm({ inputs, attrs, backend }: WasmKernelArgs): TensorInfo[] {
  const x = checkInputs(inputs);
  const fn = ownWasmFunction<AdamWasmFn>(backend, ADAM_WASM_BASE64, 'adam');
  const c = constants(
    attrs as unknown as AdamUpdateAttrs,
    heapF32(backend, x.accBeta1)[0] as number,
    heapF32(backend, x.accBeta2)[0] as number,
  );
  const outs = [x.value, x.m, x.v].map((info) => backend.makeOutput([...info.shape], 'float32')) as [TensorInfo, TensorInfo, TensorInfo];
  const offset = (info: TensorInfo): number => heapOffset(backend, info);
  fn(
    offset(x.value),
    offset(x.m),
    offset(x.v),
    offset(x.gradient),
    offset(outs[0]),
    offset(outs[1]),
    offset(outs[2]),
    size(x.value),
    c.beta1,
    c.beta2,
    c.oneMinusBeta1,
    c.oneMinusBeta2,
    c.correction1,
    c.correction2,
    c.epsilon,
    c.negLearningRate,
  );
  const products = [backend.makeOutput([], 'float32'), backend.makeOutput([], 'float32')] as [TensorInfo, TensorInfo];
  heapF32(backend, products[0])[0] = c.nextAccBeta1;
  heapF32(backend, products[1])[0] = c.nextAccBeta2;
  return [...outs, ...products];
}

function adamCpu(args: { inputs: Record<string, TensorInfo | undefined>; attrs?: NamedAttrMap; backend: unknown }): TensorInfo[] {
  const backend = args.backend as MathBackendCPU;
  const x = checkInputs(args.inputs);
  const read = (info: TensorInfo): Float32Array => backend.data.get(info.dataId).values as Float32Array;
  const [value, m, v, g] = [read(x.value), read(x.m), read(x.v), read(x.gradient)];
  const c = constants(args.attrs as unknown as AdamUpdateAttrs, read(x.accBeta1)[0] as number, read(x.accBeta2)[0] as number);
  const outValue = new Float32Array(value.length);
  const outM = new Float32Array(value.length);
  const outV = new Float32Array(value.length);
  for (let i = 0; i < value.length; i += 1) {
    const gi = g[i] as number;
    const m1 = f(f((m[i] as number) * c.beta1) + f(gi * c.oneMinusBeta1));
    const v1 = f(f((v[i] as number) * c.beta2) + f(f(gi * gi) * c.oneMinusBeta2));
    const denominator = f(f(Math.sqrt(f(v1 / c.correction2))) + c.epsilon);
    outM[i] = m1;
    outV[i] = v1;
    outValue[i] = f(f(f(f(m1 / c.correction1) / denominator) * c.negLearningRate) + (value[i] as number));
  }
  return [
    backend.makeTensorInfo([...x.value.shape], 'float32', outValue),
    backend.makeTensorInfo([...x.m.shape], 'float32', outM),
    backend.makeTensorInfo([...x.v.shape], 'float32', outV),
    backend.makeTensorInfo([], 'float32', Float32Array.of(c.nextAccBeta1)),
    backend.makeTensorInfo([], 'float32', Float32Array.of(c.nextAccBeta2)),
  ];
}

/** The fused Adam step for `wasm` and for the `cpu` oracle. */
export const ADAM_UPDATE_KERNELS: readonly KernelConfig[] = [
  { kernelName: ADAM_UPDATE, backendName: WASM, kernelFunc: asKernelFunc(adamWasm) },
  { kernelName: ADAM_UPDATE, backendName: 'cpu', kernelFunc: adamCpu as KernelFunc },
];

/** Registers the fused kernels for both backends (idempotent). */
export function registerFusedKernels(): void {
  for (const config of ADAM_UPDATE_KERNELS) {
    if (getKernel(config.kernelName, config.backendName) === undefined) registerKernel(config);
  }
}
