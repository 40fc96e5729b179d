/**
 * Our own small WebAssembly kernels (`*.wat` beside this file, compiled by
 * `scripts/gen-wasm.mjs` into `*-wasm.gen.ts`), instantiated on the memory of tfjs's wasm
 * backend, so they read and write tensors where they live, by byte offset, with no copies.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { ErrorCode, EsperError } from '../../core/index.js';

/** The global WebAssembly API, typed for what is used here (the project's libs declare no values for it). */
const wasmApi = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: abstract new () => object;
      Module: new (bytes: Uint8Array) => object;
      Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
    };
  }
).WebAssembly;

/** Instances by backend, then by module (its base64 text). */
const instances = new WeakMap<BackendWasm, Map<string, Record<string, unknown>>>();

/**
 * The exported function `name` of the module `base64`, instantiated once per backend on
 * that backend's memory (which the module imports as `env.memory`).
 */
export function ownWasmFunction<F>(backend: BackendWasm, base64: string, name: string): F {
  let byModule = instances.get(backend);
  if (byModule === undefined) {
    byModule = new Map();
    instances.set(backend, byModule);
  }
  let exports = byModule.get(base64);
  if (exports === undefined) {
    // The emscripten module keeps its exports, memory among them, on `asm` (tfjs 4.22).
    const memory = (backend.wasm as unknown as { asm?: { memory?: unknown } }).asm?.memory;
    if (!(memory instanceof wasmApi.Memory)) {
      throw new EsperError(ErrorCode.TENSOR_KERNEL_UNSUPPORTED, 'the wasm backend does not expose its memory (asm.memory)');
    }
    exports = new wasmApi.Instance(new wasmApi.Module(Buffer.from(base64, 'base64')), { env: { memory } }).exports;
    byModule.set(base64, exports);
  }
  const fn = exports[name];
  if (typeof fn !== 'function') throw new EsperError(ErrorCode.TENSOR_KERNEL_UNSUPPORTED, `own wasm module exports no function '${name}'`);
  return fn as F;
}

/** Byte offset of a tensor's data in the backend's memory. */
export function heapOffset(backend: BackendWasm, info: TensorInfo): number {
  const data = backend.dataIdMap.get(info.dataId);
  if (data === undefined) throw new EsperError(ErrorCode.TENSOR_KERNEL_UNSUPPORTED, 'tensor data is not on the wasm backend');
  return data.memoryOffset;
}
