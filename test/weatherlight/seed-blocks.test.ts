import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, loadSettings } from '../../src/core/index.js';
import { findTask, forwardMacs } from '../../src/study/index.js';
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

describe('grown arm runner', () => {
  it('runs the grown arm only', async () => {
    const settings = loadSettings({ env: {} });
    await expect(
      createArmRunner().run({ task: findTask('spirals-mlp'), arm: 'small', seed: 0, settings }, { signal: new AbortController().signal }),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });
});
