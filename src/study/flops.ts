/**
 * Training FLOPs, counted per block kind. Convention (the one the growth literature uses):
 * a forward pass costs 2 FLOPs per multiply–accumulate of the dense and convolution blocks;
 * bias adds, activations, pooling and flatten are not counted (each is under 1 % of the MACs
 * of the hosts here); a training step's backward pass costs ≈ 2× its forward pass, so a
 * step costs 3× the forward FLOPs of its batch. Validation passes are not training compute
 * and are not counted.
 */
import { ErrorCode, EsperError } from '../core/index.js';
import { z } from 'zod';

/** One block, as far as its compute goes. */
export type FlopBlock =
  /** `inputUnits → outputUnits` fully connected. */
  | { readonly kind: 'dense'; readonly inputUnits: number; readonly outputUnits: number }
  /** A 2-D convolution producing an `outputHeight × outputWidth × outputChannels` map. */
  | {
      readonly kind: 'conv2d';
      readonly outputHeight: number;
      readonly outputWidth: number;
      readonly kernelSize: number;
      readonly inputChannels: number;
      readonly outputChannels: number;
    }
  /** Blocks without multiply–accumulates (pooling, flatten, activations): 0 counted FLOPs. */
  | { readonly kind: 'maxPool' | 'flatten' };

const count = z.number().int().min(1);

/** Schema of a {@link FlopBlock} (run results carry them). */
export const FlopBlockSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('dense'), inputUnits: count, outputUnits: count }).strict(),
  z
    .object({
      kind: z.literal('conv2d'),
      outputHeight: count,
      outputWidth: count,
      kernelSize: count,
      inputChannels: count,
      outputChannels: count,
    })
    .strict(),
  z.object({ kind: z.enum(['maxPool', 'flatten']) }).strict(),
]);

/** Multiply–accumulates of one example's forward pass through `block`. */
export function forwardMacs(block: FlopBlock): number {
  switch (block.kind) {
    case 'dense':
      return block.inputUnits * block.outputUnits;
    case 'conv2d':
      return block.outputHeight * block.outputWidth * block.kernelSize * block.kernelSize * block.inputChannels * block.outputChannels;
    case 'maxPool':
    case 'flatten':
      return 0;
    default: {
      const never: never = block;
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `unknown block kind '${String((never as { kind: unknown }).kind)}'`, {
        details: { field: 'kind' },
      });
    }
  }
}

/** Forward FLOPs of one example through `blocks` (2 per MAC). */
export function forwardFlops(blocks: readonly FlopBlock[]): number {
  return blocks.reduce((sum, block) => sum + 2 * forwardMacs(block), 0);
}

/** Training FLOPs of `steps` steps of `batchSize` examples through `blocks`: forward + backward (≈ 2× forward). */
export function trainingFlops(blocks: readonly FlopBlock[], steps: number, batchSize: number): number {
  return 3 * forwardFlops(blocks) * batchSize * steps;
}

/** Compute a grown part adds from `fromStep` (inclusive) to `toStep` (exclusive). */
export interface GrownCompute {
  readonly blocks: readonly FlopBlock[];
  readonly fromStep: number;
  readonly toStep: number;
}

/**
 * Training FLOPs of a run: the host's blocks for every step plus each grown part for the
 * steps it was in the network (from the step it was added until it was removed or the run ended).
 */
export function runTrainingFlops(
  hostBlocks: readonly FlopBlock[],
  steps: number,
  batchSize: number,
  grown: readonly GrownCompute[] = [],
): number {
  let flops = trainingFlops(hostBlocks, steps, batchSize);
  for (const part of grown) {
    const from = Math.max(0, Math.min(steps, part.fromStep));
    const to = Math.max(from, Math.min(steps, part.toStep));
    flops += trainingFlops(part.blocks, to - from, batchSize);
  }
  return flops;
}

/** The parts of a Tolaria block host that {@link flopBlocksOfHost} reads. */
export interface HostBlocksView {
  readonly blocks: readonly {
    readonly kind: string;
    readonly inputShape: readonly number[];
    readonly outputShape: readonly number[];
    readonly variables: readonly { readonly shape: readonly number[] }[];
  }[];
}

/** The {@link FlopBlock}s of a host built by Tolaria's `createHost` (dense, conv2d, maxPool, flatten). */
export function flopBlocksOfHost(host: HostBlocksView): FlopBlock[] {
  return host.blocks.map((block): FlopBlock => {
    switch (block.kind) {
      case 'dense':
        return { kind: 'dense', inputUnits: dim(block.inputShape, 0), outputUnits: dim(block.outputShape, 0) };
      case 'conv2d': {
        const kernel = block.variables[0]?.shape ?? [];
        return {
          kind: 'conv2d',
          outputHeight: dim(block.outputShape, 0),
          outputWidth: dim(block.outputShape, 1),
          kernelSize: dim(kernel, 0),
          inputChannels: dim(block.inputShape, 2),
          outputChannels: dim(block.outputShape, 2),
        };
      }
      case 'maxPool':
      case 'flatten':
        return { kind: block.kind };
      default:
        throw new EsperError(ErrorCode.INVALID_ARGUMENT, `cannot count FLOPs of block kind '${block.kind}'`, {
          details: { field: 'kind', kind: block.kind },
        });
    }
  });
}

function dim(shape: readonly number[], index: number): number {
  const value = shape[index];
  if (value === undefined) throw new EsperError(ErrorCode.INVALID_ARGUMENT, `block shape [${shape.join(', ')}] has no dimension ${index}`);
  return value;
}
