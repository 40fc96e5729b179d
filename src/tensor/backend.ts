/**
 * TensorFlow.js set up once for Esper: the wasm backend (SIMD build, single thread) with
 * the project's patch kernels registered, or the pure-JS `cpu` backend as a test oracle.
 *
 * Facts this rests on (reference `tensor-backend-measurements.md`):
 * - §7: `@tensorflow/tfjs-core` + `tfjs-backend-wasm` + `tfjs-backend-cpu`, pinned 4.22.0;
 *   the `.wasm` binaries ship inside the npm package, so nothing downloads at install or run
 *   time — {@link initTensorBackend} points `setWasmPaths` at the package's own `dist/`.
 * - §2: two kernels are missing and several are slow on wasm; the patch module
 *   (`kernels/register-all.ts`) fixes them and is registered here, once.
 * - §3: threads stay **off**. tfjs hard-disables the threaded wasm build under Node
 *   (`WASM_HAS_MULTITHREAD_SUPPORT` is false when `IS_NODE`); enabling it needs a ~60-line
 *   shim around emscripten's worker glue and an inflated core count, and measured at most
 *   1.0–1.3× on CNN training with 2 vCPU. That shim is deliberately **not** implemented, so
 *   `threads` is always 1.
 * - §1: the `cpu` backend is ~100× slower than torch; use it only to check wasm results.
 *
 * Facts found while building this module, not in the reference:
 * - tfjs-core's Node bundle registers **no gradients** (the union `@tensorflow/tfjs` bundle
 *   does that). `@tensorflow/tfjs-layers`, whose only dependency is tfjs-core, registers all
 *   of tfjs-core's gradients into the process-global registry when imported, so it is
 *   imported here for that side effect (31 MB against the union package's ~300 MB).
 * - Chained ops (`t.mul(u)`) are not registered by any of these bundles: write functional
 *   ops (`tf.mul(t, u)`).
 * - The emscripten glue installs `uncaughtException`/`unhandledRejection` listeners that
 *   rethrow; they are removed after initialisation so only Weatherlight/CLI decide what the
 *   process does with such errors (spec 02 "Time, cancellation, lifetimes").
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Side effect: registers every tfjs-core gradient (the core Node bundle registers none).
import '@tensorflow/tfjs-layers';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ErrorCode, EsperError, isEsperError, optionChecks } from '../core/index.js';
import {
  PATCH_GRADIENTS,
  PATCH_KERNELS,
  patchKernelsRegistered,
  registerPatchKernels,
  unregisterPatchKernels,
} from './kernels/register-all.js';
import { ADAM_UPDATE, registerFusedKernels } from './kernels/adam-update.js';

/** Backends Esper runs tensors on. */
export const TensorBackendName = {
  /** XNNPACK-backed WebAssembly, SIMD, single thread: the training backend. */
  WASM: 'wasm',
  /** Pure JS: slow, used as the parity oracle in tests. */
  CPU: 'cpu',
} as const;

/** Union of {@link TensorBackendName} values. */
export type TensorBackendName = (typeof TensorBackendName)[keyof typeof TensorBackendName];

/** Options of {@link initTensorBackend}. */
export interface TensorBackendOptions {
  /**
   * Backend to make active. The wasm backend is initialised (and patched) either way, so
   * code can switch between the two with {@link useTensorBackend}.
   * @default 'wasm'
   */
  readonly backend?: TensorBackendName;
  /**
   * Register the project's wasm patch kernels. `false` restores the stock tfjs kernels
   * (two of them missing) — for benchmarks and diagnosis only.
   * @default true
   */
  readonly patchKernels?: boolean;
}

/** Fully resolved {@link TensorBackendOptions}. */
export interface ResolvedTensorBackendOptions {
  readonly backend: TensorBackendName;
  readonly patchKernels: boolean;
}

/** Defaults of {@link TensorBackendOptions}, in one place. */
export const TENSOR_BACKEND_DEFAULTS: ResolvedTensorBackendOptions = {
  backend: TensorBackendName.WASM,
  patchKernels: true,
};

/** What {@link initTensorBackend} set up. */
export interface TensorBackendDescription {
  /** Active backend. */
  readonly backend: TensorBackendName;
  /** Whether the wasm backend runs its SIMD build. */
  readonly simd: boolean;
  /** XNNPACK threads of the wasm backend (always 1: the threaded build is not enabled). */
  readonly threads: number;
  /** Kernel names patched for wasm (empty when `patchKernels` is false). */
  readonly patchKernels: readonly string[];
  /** Kernel names whose gradient is overridden (empty when `patchKernels` is false). */
  readonly patchGradients: readonly string[];
  /** Kernels of our own that fuse several ops (registered whether patches are on or off). */
  readonly fusedKernels: readonly string[];
  /** The tfjs-core version in use. */
  readonly tfjsVersion: string;
}

/**
 * Merges options with {@link TENSOR_BACKEND_DEFAULTS} and validates them eagerly. (No
 * environment variables: process settings are read by core's settings module only.)
 */
export function resolveTensorBackendOptions(options: TensorBackendOptions = {}): ResolvedTensorBackendOptions {
  const check = optionChecks('tensor backend');
  const backend = check.oneOf('backend', options.backend ?? TENSOR_BACKEND_DEFAULTS.backend, Object.values(TensorBackendName));
  const patchKernels = options.patchKernels ?? TENSOR_BACKEND_DEFAULTS.patchKernels;
  if (typeof patchKernels !== 'boolean') check.fail('patchKernels', 'a boolean', patchKernels);
  return { backend, patchKernels };
}

/** Directory of the wasm binaries inside the installed npm package (trailing slash). */
export function wasmBinaryDirectory(): string {
  const require = createRequire(import.meta.url);
  return `${path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}${path.sep}`;
}

let wasmReady: Promise<void> | undefined;
let chain: Promise<unknown> = Promise.resolve();

const PROCESS_EVENTS = ['uncaughtException', 'unhandledRejection'] as const;

async function initialiseWasm(): Promise<void> {
  const listenersOf = (event: (typeof PROCESS_EVENTS)[number]): Set<unknown> =>
    new Set<unknown>(event === 'uncaughtException' ? process.listeners('uncaughtException') : process.listeners('unhandledRejection'));
  const before = new Map(PROCESS_EVENTS.map((event) => [event, listenersOf(event)]));
  setWasmPaths(wasmBinaryDirectory());
  // PROD only silences tfjs console banners and deprecation notes (e.g. the cpu backend's
  // "install tfjs-node" message); it changes no numerics or checks.
  tf.env().set('PROD', true);
  try {
    const ok = await tf.setBackend(TensorBackendName.WASM);
    if (!ok) {
      throw new EsperError(ErrorCode.TENSOR_BACKEND_INIT_FAILED, 'tfjs wasm backend failed to initialise');
    }
  } finally {
    for (const event of PROCESS_EVENTS) {
      const known = before.get(event) ?? new Set<unknown>();
      for (const listener of listenersOf(event)) {
        if (!known.has(listener)) process.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
  }
}

async function activate(name: TensorBackendName): Promise<void> {
  if (tf.getBackend() === name) return;
  const ok = await tf.setBackend(name);
  if (!ok) throw new EsperError(ErrorCode.TENSOR_BACKEND_INIT_FAILED, `tfjs backend '${name}' failed to initialise`);
}

/**
 * Sets TensorFlow.js up for Esper: initialises the wasm backend from the package's own
 * binaries, registers the patch kernels once, and activates the requested backend.
 * Idempotent and safe to call concurrently (calls run one after another); a later call
 * may switch the active backend or the patch state.
 *
 * The tfjs engine is process-global: every subsystem shares the backend chosen here.
 */
export function initTensorBackend(options: TensorBackendOptions = {}): Promise<TensorBackendDescription> {
  const resolved = resolveTensorBackendOptions(options);
  const run = chain.then(async () => {
    wasmReady ??= initialiseWasm().catch((error: unknown) => {
      wasmReady = undefined;
      throw isEsperError(error)
        ? error
        : new EsperError(ErrorCode.TENSOR_BACKEND_INIT_FAILED, 'tfjs wasm backend failed to initialise', { cause: error });
    });
    await wasmReady;
    registerFusedKernels();
    if (resolved.patchKernels) registerPatchKernels();
    else unregisterPatchKernels();
    await activate(resolved.backend);
    return describeTensorBackend();
  });
  chain = run.catch(() => undefined);
  return run;
}

/** Describes the current tensor setup (call after {@link initTensorBackend}). */
export function describeTensorBackend(): TensorBackendDescription {
  const patched = patchKernelsRegistered();
  return {
    backend: tf.getBackend() as TensorBackendName,
    simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
    threads: getThreadsCount(),
    patchKernels: patched ? PATCH_KERNELS.map((k) => k.kernelName) : [],
    patchGradients: patched ? PATCH_GRADIENTS.map((g) => g.kernelName) : [],
    fusedKernels: [ADAM_UPDATE],
    tfjsVersion: tf.version_core,
  };
}

/**
 * Makes `name` the active backend (both are initialised by {@link initTensorBackend}).
 * Tensors created on the other backend move lazily when an op reads them.
 */
export async function useTensorBackend(name: TensorBackendName): Promise<void> {
  if (wasmReady === undefined) await initTensorBackend({ backend: name });
  else await activate(name);
}

/**
 * Runs `fn` with `name` active and restores the previous backend afterwards — the way
 * parity tests run the same code on wasm and on the cpu oracle. The engine is global, so
 * nothing else may use tensors while `fn` runs.
 */
export async function runOnTensorBackend<T>(name: TensorBackendName, fn: () => T | Promise<T>): Promise<T> {
  if (wasmReady === undefined) await initTensorBackend();
  const previous = tf.getBackend() as TensorBackendName;
  await activate(name);
  try {
    return await fn();
  } finally {
    await activate(previous);
  }
}
