import { beforeAll, describe, expect, it } from 'vitest';
import { initTensorBackend } from '../../src/tensor/index.js';
import { createHost } from '../../src/tolaria/index.js';
import { flopBlocksOfHost, forwardFlops, forwardMacs, runTrainingFlops, trainingFlops } from '../../src/study/index.js';

describe('training FLOP counter', () => {
  beforeAll(async () => {
    await initTensorBackend();
  });

  it('counts a dense block as input × output MACs', () => {
    expect(forwardMacs({ kind: 'dense', inputUnits: 784, outputUnits: 8 })).toBe(6272);
  });

  it('counts a conv block as outH × outW × k² × Cin × Cout MACs', () => {
    // 28×28 output, 3×3 kernel, 1 → 4 channels: 784 · 9 · 4 = 28,224.
    const conv = { kind: 'conv2d', outputHeight: 28, outputWidth: 28, kernelSize: 3, inputChannels: 1, outputChannels: 4 } as const;
    expect(forwardMacs(conv)).toBe(28_224);
  });

  it('counts pooling and flatten as no MACs', () => {
    expect(forwardMacs({ kind: 'maxPool' })).toBe(0);
    expect(forwardMacs({ kind: 'flatten' })).toBe(0);
  });

  it('counts a training step as 3 × forward (backward ≈ 2 × forward), 2 FLOPs per MAC', () => {
    // MLP 784-8-10: 6,272 + 80 = 6,352 MACs → 12,704 forward FLOPs per example.
    const blocks = [
      { kind: 'dense', inputUnits: 784, outputUnits: 8 },
      { kind: 'dense', inputUnits: 8, outputUnits: 10 },
    ] as const;
    expect(forwardFlops(blocks)).toBe(12_704);
    // 6,000 steps of 128: 3 · 12,704 · 128 · 6,000 = 29,270,016,000.
    expect(trainingFlops(blocks, 6000, 128)).toBe(29_270_016_000);
  });

  it('adds grown units only from the step they were added, and culled ones until their removal', () => {
    const host = [{ kind: 'dense', inputUnits: 2, outputUnits: 4 }] as const;
    const widen = [
      { kind: 'dense', inputUnits: 2, outputUnits: 3 },
      { kind: 'dense', inputUnits: 3, outputUnits: 2 },
    ] as const;
    // host 8 MACs; widen 6 + 6 = 12 MACs; batch 10.
    // host: 3·16·10·100 = 48,000; kept part steps 40..100: 3·24·10·60 = 43,200; culled part steps 50..70: 3·24·10·20 = 14,400.
    const flops = runTrainingFlops(host, 100, 10, [
      { blocks: widen, fromStep: 40, toStep: 100 },
      { blocks: widen, fromStep: 50, toStep: 70 },
    ]);
    expect(flops).toBe(48_000 + 43_200 + 14_400);
    // A part said to start after the run ended costs nothing.
    expect(runTrainingFlops(host, 100, 10, [{ blocks: widen, fromStep: 120, toStep: 150 }])).toBe(48_000);
  });

  it("reads the blocks of Tolaria's MLP and CNN hosts", () => {
    const mlp = createHost('mlp', { inputShape: [784], numClasses: 10, seed: 1, hidden: [8], hostId: 'flops-mlp' });
    const cnn = createHost('cnn', {
      inputShape: [28, 28, 1],
      numClasses: 10,
      seed: 1,
      channels: [4, 8],
      kernelSize: 3,
      hostId: 'flops-cnn',
    });
    try {
      expect(flopBlocksOfHost(mlp)).toEqual([
        { kind: 'dense', inputUnits: 784, outputUnits: 8 },
        { kind: 'dense', inputUnits: 8, outputUnits: 10 },
      ]);
      const blocks = flopBlocksOfHost(cnn);
      expect(blocks.map((b) => b.kind)).toEqual(['conv2d', 'maxPool', 'conv2d', 'maxPool', 'flatten', 'dense']);
      // conv1 28·28·9·1·4 = 28,224; conv2 14·14·9·4·8 = 56,448; head 392·10 = 3,920.
      expect(blocks.map(forwardMacs)).toEqual([28_224, 0, 56_448, 0, 0, 3_920]);
    } finally {
      mlp.dispose();
      cnn.dispose();
    }
  });
});
