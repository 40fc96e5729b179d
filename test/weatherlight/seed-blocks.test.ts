import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, loadSettings } from '../../src/core/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { findTask, flopBlocksOfHost, forwardFlops, forwardMacs } from '../../src/study/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { decodeArtifact, TezzeretCompiler } from '../../src/tezzeret/index.js';
import { cnnHost } from '../../src/tolaria/index.js';
import type { BlockHost } from '../../src/tolaria/hosts/block-host.js';
import { createArmRunner, seedFlopBlocks } from '../../src/weatherlight/index.js';

const variable = (name: string, shape: number[]) => ({ name, shape, dtype: 'float32' as const });

describe('seedFlopBlocks', () => {
  it('counts a widen seed at a WIDEN site as dense in×k and k×out (biases add no multiplies)', () => {
    const blocks = seedFlopBlocks({
      blueprintId: 'BP051',
      site: { kind: 'WIDEN', shape: [784], outputShape: [10] },
      variables: [variable('U', [784, 24]), variable('c', [24]), variable('V', [24, 10])],
    });
    expect(blocks).toEqual([
      { kind: 'dense', inputUnits: 784, outputUnits: 24 },
      { kind: 'dense', inputUnits: 24, outputUnits: 10 },
    ]);
  });

  it('counts a channel-widening seed at a conv WIDEN site along its path: U at the widened map, V at the next conv map or dense after the flatten', () => {
    const conv = { size: 3, stride: 1, padding: 'SAME' } as const;
    const path = { conv, activation: 'RELU', pool: { size: 2, stride: 2, padding: 'VALID' } } as const;
    const intoHead = seedFlopBlocks({
      blueprintId: 'BP056',
      site: { kind: 'WIDEN', shape: [14, 14, 4], outputShape: [10], convWiden: path },
      variables: [variable('U', [3, 3, 4, 8]), variable('c', [8]), variable('V', [7 * 7 * 8, 10])],
    });
    expect(intoHead).toEqual([
      { kind: 'conv2d', outputHeight: 14, outputWidth: 14, kernelSize: 3, inputChannels: 4, outputChannels: 8 },
      { kind: 'dense', inputUnits: 392, outputUnits: 10 },
    ]);
    const intoConv = seedFlopBlocks({
      blueprintId: 'BP056',
      site: { kind: 'WIDEN', shape: [28, 28, 1], outputShape: [14, 14, 8], convWiden: { ...path, nextConv: conv } },
      variables: [variable('U', [3, 3, 1, 8]), variable('c', [8]), variable('V', [3, 3, 8, 8])],
    });
    expect(intoConv).toEqual([
      { kind: 'conv2d', outputHeight: 28, outputWidth: 28, kernelSize: 3, inputChannels: 1, outputChannels: 8 },
      { kind: 'conv2d', outputHeight: 14, outputWidth: 14, kernelSize: 3, inputChannels: 8, outputChannels: 8 },
    ]);
  });

  it("counts kernels at a CONV site as convolutions over the site's map, and matrices as 1×1 convolutions", () => {
    const blocks = seedFlopBlocks({
      blueprintId: 'BPX',
      site: { kind: 'CONV', shape: [14, 14, 8] },
      variables: [variable('k', [3, 3, 8, 8]), variable('mix', [8, 4]), variable('scale', [8])],
    });
    expect(blocks).toEqual([
      { kind: 'conv2d', outputHeight: 14, outputWidth: 14, kernelSize: 3, inputChannels: 8, outputChannels: 8 },
      { kind: 'conv2d', outputHeight: 14, outputWidth: 14, kernelSize: 1, inputChannels: 8, outputChannels: 4 },
    ]);
    expect(blocks.map(forwardMacs)).toEqual([14 * 14 * 9 * 64, 14 * 14 * 32]);
  });

  it('refuses a non-square kernel, naming the blueprint and variable', () => {
    let error: unknown;
    try {
      seedFlopBlocks({ blueprintId: 'BPY', site: { kind: 'CONV', shape: [8, 8, 2] }, variables: [variable('k', [3, 1, 2, 2])] });
    } catch (e) {
      error = e;
    }
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((error as Error).message).toContain('BPY: variable k');
  });
});

describe('FLOPs of a CNN grown by channel widening', () => {
  it('the small host plus a BP056 seed at block2.widen costs what the explicitly wider host does (per example, forward)', async () => {
    await initTensorBackend();
    const task = findTask('fmnist-cnn-small@1');
    const host = (channels: readonly number[], hostId: string) =>
      cnnHost({ inputShape: [28, 28, 1], channels, kernelSize: 3, numClasses: 10, seed: 1, hostId }) as BlockHost;
    const small = host(task.smallHost.family === 'cnn' ? task.smallHost.channels : [], 'flops-small');
    const large = host(task.largeHost.family === 'cnn' ? task.largeHost.channels : [], 'flops-large');
    try {
      const site = small.descriptor.sites.find((s) => s.siteId === 'block2.widen');
      if (site === undefined) throw new Error('no block2.widen');
      const compiler = new TezzeretCompiler({ prewarmSamples: 1 });
      const artifact = await compiler.compile(new KarnCatalog().get('BP056'), { channels: 8 }, site, { seed: 1 });
      const seed = seedFlopBlocks(decodeArtifact(artifact.bytes).header);
      expect(forwardFlops([...flopBlocksOfHost(small), ...seed])).toBe(forwardFlops(flopBlocksOfHost(large)));
      expect(forwardFlops(seed)).toBeGreaterThan(0);
    } finally {
      small.dispose();
      large.dispose();
    }
  });
});

describe('grown arm runner', () => {
  it('runs the grown arm only', async () => {
    const settings = loadSettings({ env: {} });
    await expect(
      createArmRunner().run({ task: findTask('spirals-mlp'), arm: 'small', seed: 0, settings }, { signal: new AbortController().signal }),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });
});
