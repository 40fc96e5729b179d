/**
 * Shared plumbing for the wasm patch kernels: calling stock wasm kernels from inside a
 * kernel, freeing intermediates, and reading/writing the wasm heap.
 *
 * Why this exists (reference `tensor-backend-measurements.md` §2): a kernelFunc receives the
 * `BackendWasm`, so it can (a) call existing, XNNPACK-backed wasm kernels directly through
 * the registry and free what it allocated with `backend.disposeData`, and (b) work on the
 * heap in JS through `makeOutput` + `typedArrayFromHeap`. Ops run inside a kernel are not
 * recorded on the gradient tape, so gradients stay those of the public op.
 */
import {
  backend_util,
  getKernel,
  type DataType,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { ErrorCode, EsperError } from '../../core/index.js';

/** The backend name every patch kernel registers for. */
export const WASM = 'wasm';

/** Arguments a kernelFunc receives, typed for the wasm backend. */
export interface WasmKernelArgs {
  /** Input tensors by the kernel's input names. */
  readonly inputs: NamedTensorInfoMap;
  /** Kernel attributes (strides, padding, …). */
  readonly attrs?: NamedAttrMap;
  /** The wasm backend: heap access and the data-id map. */
  readonly backend: BackendWasm;
}

/** A kernelFunc body written against the wasm backend. */
export type WasmKernelFunc = (args: WasmKernelArgs) => TensorInfo | TensorInfo[];

/** Adapts a {@link WasmKernelFunc} to tfjs's untyped `KernelFunc`. */
export function asKernelFunc(fn: WasmKernelFunc): KernelFunc {
  return ((args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }) =>
    fn({ inputs: args.inputs, attrs: args.attrs ?? {}, backend: args.backend as BackendWasm })) as KernelFunc;
}

/**
 * Runs the kernel currently registered for `wasm` under `kernelName` (stock, or a patch
 * that does not call itself) and returns its single output.
 */
export function runWasmKernel(backend: BackendWasm, kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
  const config = getKernel(kernelName, WASM);
  if (config === undefined) {
    throw new EsperError(ErrorCode.TENSOR_KERNEL_UNSUPPORTED, `Kernel '${kernelName}' is not registered for wasm`, {
      details: { kernelName },
    });
  }
  return single(config.kernelFunc({ inputs, attrs, backend }), kernelName);
}

/**
 * Runs a captured kernelFunc (typically the stock one a patch delegates to). A patch
 * whose stock kernel did not exist cannot delegate: `TENSOR_KERNEL_UNSUPPORTED`.
 */
export function runKernelFunc(
  fn: KernelFunc | undefined,
  backend: BackendWasm,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap = {},
  kernelName = 'kernel',
): TensorInfo {
  if (fn === undefined) {
    throw new EsperError(ErrorCode.TENSOR_KERNEL_UNSUPPORTED, `${kernelName}: no stock kernel to delegate to`, { details: { kernelName } });
  }
  return single(fn({ inputs, attrs, backend }), kernelName);
}

function single(out: TensorInfo | TensorInfo[], kernelName: string): TensorInfo {
  if (Array.isArray(out)) {
    if (out.length !== 1 || out[0] === undefined) {
      throw new EsperError(ErrorCode.TENSOR_KERNEL_UNSUPPORTED, `Kernel '${kernelName}' returned ${out.length} outputs, expected 1`);
    }
    return out[0];
  }
  return out;
}

/** Frees intermediates a kernel allocated (decrements their refCount on the backend). */
export function free(backend: BackendWasm, ...infos: readonly (TensorInfo | undefined)[]): void {
  for (const info of infos) if (info !== undefined) backend.disposeData(info.dataId);
}

/** `Transpose` through the stock wasm kernel (fast: a C++ copy, no scalar math). */
export function transpose(backend: BackendWasm, x: TensorInfo, perm: readonly number[]): TensorInfo {
  return runWasmKernel(backend, 'Transpose', { x }, { perm: [...perm] });
}

/** `Reshape` (shares the data, bumps its refCount; free the result like any other). */
export function reshape(backend: BackendWasm, x: TensorInfo, shape: readonly number[]): TensorInfo {
  return runWasmKernel(backend, 'Reshape', { x }, { shape: [...shape] });
}

/** `Reverse` along `dims`. */
export function reverse(backend: BackendWasm, x: TensorInfo, dims: readonly number[]): TensorInfo {
  return runWasmKernel(backend, 'Reverse', { x }, { dims: [...dims] });
}

/** `Slice` with `begin` and `size`. */
export function slice(backend: BackendWasm, x: TensorInfo, begin: readonly number[], size: readonly number[]): TensorInfo {
  return runWasmKernel(backend, 'Slice', { x }, { begin: [...begin], size: [...size] });
}

/** A stock XNNPACK-backed NHWC convolution kernel with explicit padding. */
function convolutionExplicit(
  kernelName: 'Conv2D' | 'DepthwiseConv2dNative',
  backend: BackendWasm,
  x: TensorInfo,
  filter: TensorInfo,
  strides: readonly [number, number],
  dilations: readonly [number, number],
  pads: readonly [number, number, number, number],
): TensorInfo {
  return runWasmKernel(
    backend,
    kernelName,
    { x, filter },
    {
      strides: [...strides],
      dilations: [...dilations],
      pad: explicitPadding(pads),
      dataFormat: 'NHWC',
    },
  );
}

/**
 * NHWC `Conv2D` with explicit padding `[top, bottom, left, right]`, through the stock
 * XNNPACK-backed wasm kernel.
 */
export function conv2dExplicit(
  backend: BackendWasm,
  x: TensorInfo,
  filter: TensorInfo,
  strides: readonly [number, number],
  dilations: readonly [number, number],
  pads: readonly [number, number, number, number],
): TensorInfo {
  return convolutionExplicit('Conv2D', backend, x, filter, strides, dilations, pads);
}

/** NHWC `DepthwiseConv2dNative` with explicit padding, through the stock wasm kernel. */
export function depthwiseConv2dExplicit(
  backend: BackendWasm,
  x: TensorInfo,
  filter: TensorInfo,
  strides: readonly [number, number],
  dilations: readonly [number, number],
  pads: readonly [number, number, number, number],
): TensorInfo {
  return convolutionExplicit('DepthwiseConv2dNative', backend, x, filter, strides, dilations, pads);
}

function explicitPadding(pads: readonly [number, number, number, number]): number[][] {
  return [
    [0, 0],
    [pads[0], pads[1]],
    [pads[2], pads[3]],
    [0, 0],
  ];
}

/** A fresh heap tensor filled with zeros (`makeOutput` memory is uninitialised). */
export function zeros(backend: BackendWasm, shape: readonly number[], dtype: DataType = 'float32'): TensorInfo {
  const out = backend.makeOutput([...shape], dtype);
  backend.typedArrayFromHeap(out).fill(0);
  return out;
}

/**
 * A typed view of a tensor on the wasm heap. Take views only after the last allocation of
 * the kernel: `malloc` may grow the heap and detach earlier views.
 */
export function heap(backend: BackendWasm, info: TensorInfo): Float32Array | Int32Array | Uint8Array {
  return backend.typedArrayFromHeap(info) as Float32Array | Int32Array | Uint8Array;
}

/** Heap view of a float32 tensor. */
export function heapF32(backend: BackendWasm, info: TensorInfo): Float32Array {
  if (info.dtype !== 'float32') {
    throw new EsperError(ErrorCode.TENSOR_KERNEL_UNSUPPORTED, `Expected a float32 tensor, got ${info.dtype}`);
  }
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** Integer values of an index tensor (int32 or float32 holding integers). */
export function readIndices(backend: BackendWasm, info: TensorInfo): Int32Array {
  const view = backend.typedArrayFromHeap(info);
  return view instanceof Int32Array ? view : Int32Array.from(view as Float32Array);
}

/** Throws the unsupported-kernel error for a layout the wasm backend cannot run. */
export function assertChannelsLast(kernelName: string, dataFormat: string | undefined): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new EsperError(
      ErrorCode.TENSOR_KERNEL_UNSUPPORTED,
      `${kernelName} on wasm supports NHWC only (the wasm forward conv rejects ${dataFormat} too)`,
      { details: { kernelName, dataFormat } },
    );
  }
}

/** Conv geometry of a 2-D convolution, as tfjs computes it for the forward op. */
export function conv2dInfo(
  xShape: readonly number[],
  filterShape: readonly number[],
  strides: number | readonly number[],
  dilations: number | readonly number[],
  pad: unknown,
  dimRoundingMode: unknown,
  depthwise: boolean,
): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides as [number, number],
    dilations as [number, number],
    pad as 'valid',
    dimRoundingMode as 'floor' | undefined,
    depthwise,
    'channelsLast',
  );
}
