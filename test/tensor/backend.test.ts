/**
 * Backend set-up: idempotent initialisation from the package's own wasm binaries, one
 * registration of the patch module, cpu for parity runs, the stock path on request, and no
 * process-level listeners left behind by the emscripten glue.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import {
  describeTensorBackend,
  initTensorBackend,
  PATCH_KERNELS,
  resolveTensorBackendOptions,
  runOnTensorBackend,
  tf,
  useTensorBackend,
  wasmBinaryDirectory,
} from '../../src/tensor/index.js';

describe('initTensorBackend', () => {
  it('sets up wasm (SIMD, one thread) with every patch kernel, idempotently and concurrently', async () => {
    const uncaught = process.listenerCount('uncaughtException');
    const unhandled = process.listenerCount('unhandledRejection');
    const [first, second] = await Promise.all([initTensorBackend(), initTensorBackend()]);
    const third = await initTensorBackend();
    expect(first).toEqual(second);
    expect(third).toEqual(first);
    expect(first.backend).toBe('wasm');
    expect(first.simd).toBe(true);
    expect(first.threads).toBe(1);
    expect(first.tfjsVersion).toBe('4.22.0');
    expect(first.patchKernels).toEqual(PATCH_KERNELS.map((k) => k.kernelName));
    expect(first.patchGradients).toEqual(['UnsortedSegmentSum', 'BatchMatMul']);
    for (const name of first.patchKernels) expect(tf.getKernel(name, 'wasm'), name).toBeDefined();
    // The emscripten glue's rethrowing process listeners were removed again.
    expect(process.listenerCount('uncaughtException')).toBe(uncaught);
    expect(process.listenerCount('unhandledRejection')).toBe(unhandled);
  });

  it('loads the wasm binaries shipped inside the npm package', () => {
    const dir = wasmBinaryDirectory();
    expect(existsSync(path.join(dir, 'tfjs-backend-wasm-simd.wasm'))).toBe(true);
    expect(dir).toContain(path.join('node_modules', '@tensorflow', 'tfjs-backend-wasm'));
  });

  it('restores the stock kernels on request (two missing again) and re-patches', async () => {
    const stock = await initTensorBackend({ patchKernels: false });
    expect(stock.patchKernels).toEqual([]);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeUndefined();
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBeDefined();
    const patched = await initTensorBackend();
    expect(patched.patchKernels).toHaveLength(PATCH_KERNELS.length);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });

  it('switches to cpu and back, and runOnTensorBackend restores the previous backend', async () => {
    await initTensorBackend({ backend: 'cpu' });
    expect(tf.getBackend()).toBe('cpu');
    await useTensorBackend('wasm');
    const seen = await runOnTensorBackend('cpu', () => tf.getBackend());
    expect(seen).toBe('cpu');
    expect(tf.getBackend()).toBe('wasm');
    await expect(runOnTensorBackend('cpu', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(tf.getBackend()).toBe('wasm');
    expect(describeTensorBackend().backend).toBe('wasm');
  });

  it('moves tensors between backends transparently', async () => {
    const a = tf.tensor([1, 2, 3]);
    const doubled = await runOnTensorBackend('cpu', () => {
      const b = tf.mul(a, 2);
      const values = Array.from(b.dataSync());
      b.dispose();
      return values;
    });
    expect(doubled).toEqual([2, 4, 6]);
    a.dispose();
  });

  it('validates options eagerly and names the bad field', () => {
    expect(resolveTensorBackendOptions()).toEqual({ backend: 'wasm', patchKernels: true });
    let caught: unknown;
    try {
      resolveTensorBackendOptions({ backend: 'webgl' as 'wasm' });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((caught as { details: Record<string, unknown> }).details['field']).toBe('backend');
  });
});
