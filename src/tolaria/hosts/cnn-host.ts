/**
 * The CNN host family: blocks of 3×3 convolution + ReLU + 2×2 max-pool, then a flatten and
 * a linear head. Each block `block<i>` has two seed sites: `block<i>` (CONV, after the pool:
 * a seed adds to its feature map) and `block<i>.widen` (WIDEN: a seed adds output channels
 * to the block's convolution, which go through the same ReLU and pool into the next
 * convolution's — or, after the last block, the head's — pre-activation). The bench
 * model (two 3×3 conv + pool blocks) is `cnnHost({ inputShape: [32, 32, 3], seed })`.
 */
import { Activation } from './blocks.js';
import type { BlockHost } from './block-host.js';
import { HostBuilder } from './host-builder.js';

/** Options of {@link cnnHost}. */
export interface CnnHostOptions {
  /** Per-example NHWC input shape, e.g. `[32, 32, 3]` (CIFAR-10) or `[28, 28, 1]` (MNIST). */
  readonly inputShape: readonly number[];
  /**
   * Output channels of each conv block; block `i` (from 1) has seed sites `block<i>` (CONV)
   * and `block<i>.widen` (WIDEN).
   * @default [32, 64]
   */
  readonly channels?: readonly number[];
  /**
   * Side of the square conv kernels, in pixels.
   * @default 3
   */
  readonly kernelSize?: number;
  /**
   * Number of classes (logits).
   * @default 10
   */
  readonly numClasses?: number;
  /** Seed of the weight initialisation (non-negative safe integer). */
  readonly seed: number;
  /**
   * Variable-name prefix; unique among live hosts.
   * @default 'cnn'
   */
  readonly hostId?: string;
}

/** Defaults of {@link CnnHostOptions}. */
export const CNN_HOST_DEFAULTS = {
  channels: [32, 64],
  kernelSize: 3,
  numClasses: 10,
  hostId: 'cnn',
} as const;

/**
 * Builds a CNN host (family `cnn`): per block `conv<i>` (same padding, stride 1, ReLU) with
 * WIDEN site `block<i>.widen`, then `pool<i>` (2×2, stride 2) and site `block<i>`; then
 * `flatten` and `head`. Sites in host order: `block1.widen`, `block1`, `block2.widen`, ….
 */
export function cnnHost(options: CnnHostOptions): BlockHost {
  const channels = options.channels ?? CNN_HOST_DEFAULTS.channels;
  const kernelSize = options.kernelSize ?? CNN_HOST_DEFAULTS.kernelSize;
  let builder = new HostBuilder({
    hostId: options.hostId ?? CNN_HOST_DEFAULTS.hostId,
    family: 'cnn',
    inputShape: options.inputShape,
    seed: options.seed,
  });
  channels.forEach((filters, i) => {
    builder = builder
      .conv2d(filters, { name: `conv${i + 1}`, kernelSize, activation: Activation.RELU })
      .widenSite(`block${i + 1}.widen`)
      .maxPool(2, { name: `pool${i + 1}` })
      .site(`block${i + 1}`);
  });
  return builder
    .flatten({ name: 'flatten' })
    .dense(options.numClasses ?? CNN_HOST_DEFAULTS.numClasses, Activation.LINEAR, { name: 'head' })
    .build();
}
