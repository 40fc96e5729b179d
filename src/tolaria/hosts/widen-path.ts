/**
 * Where a WIDEN site's new units go: from the widened block to the next weighted block,
 * whose pre-activation they add to. Read the same way from the builder's specs (to write the
 * site descriptor) and from the built blocks (to check a descriptor and to know where the
 * host adds the contribution), so the two cannot disagree.
 *
 * - dense block ℓ → the dense block ℓ+1 right after it;
 * - conv2d block ℓ → optionally one max-pool → a conv2d block, or a flatten → a dense block.
 *   The site descriptor carries that path (`ConvWidenPath`: the conv's kernel and
 *   activation, the pool, the next conv's kernel or none for the flatten + dense), which is
 *   everything a seed module needs to compute what the same channels would in a wider host.
 */
import { create } from '@bufbuild/protobuf';
import {
  BlockActivation,
  ConvWidenPathSchema,
  SquareWindowSchema,
  WindowPadding,
  type ConvWidenPath,
  type SquareWindow,
} from '../../leyline/index.js';
import { Activation, BlockKind, type BlockWindow } from './blocks.js';

/** What {@link widenPathOf} reads of a block (a `BlockSpec` or a `HostBlock`). */
export interface PathBlock {
  readonly name: string;
  readonly kind: BlockKind;
  readonly outputShape: readonly number[];
  readonly window?: BlockWindow;
  readonly activation?: Activation;
}

/** Where the new units of a widened block go. */
export interface WidenPath {
  /** Index of the weighted block whose pre-activation receives the contribution. */
  readonly target: number;
  /** That block's per-example output shape (the contribution's shape). */
  readonly outputShape: readonly number[];
  /** The conv path (conv2d blocks only). */
  readonly convWiden?: ConvWidenPath;
}

/** A {@link WidenPath}, or why block `depth` cannot be widened. */
export type WidenPathResult = { readonly ok: true; readonly path: WidenPath } | { readonly ok: false; readonly reason: string };

const PADDINGS = { same: WindowPadding.SAME, valid: WindowPadding.VALID } as const;

const ACTIVATIONS: Readonly<Record<Activation, BlockActivation>> = {
  [Activation.LINEAR]: BlockActivation.LINEAR,
  [Activation.RELU]: BlockActivation.RELU,
  [Activation.TANH]: BlockActivation.TANH,
  [Activation.SIGMOID]: BlockActivation.SIGMOID,
};

function squareWindow(window: BlockWindow): SquareWindow {
  return create(SquareWindowSchema, { size: window.size, stride: window.stride, padding: PADDINGS[window.padding] });
}

/** The path of block `depth`'s new units through `blocks`. */
export function widenPathOf(blocks: readonly PathBlock[], depth: number): WidenPathResult {
  const block = blocks[depth];
  if (block?.kind === BlockKind.DENSE) {
    const next = blocks[depth + 1];
    if (next?.kind !== BlockKind.DENSE) return { ok: false, reason: `needs a dense block after '${block.name}'` };
    return { ok: true, path: { target: depth + 1, outputShape: next.outputShape } };
  }
  if (block?.kind !== BlockKind.CONV2D || block.window === undefined || block.activation === undefined) {
    return { ok: false, reason: `needs a dense or conv2d block, '${block?.name ?? depth}' is ${block?.kind ?? 'missing'}` };
  }
  let index = depth + 1;
  const pool = blocks[index]?.kind === BlockKind.MAX_POOL ? blocks[index]?.window : undefined;
  if (pool !== undefined) index += 1;
  const flatten = blocks[index]?.kind === BlockKind.FLATTEN;
  if (flatten) index += 1;
  const next = blocks[index];
  const wanted = flatten ? BlockKind.DENSE : BlockKind.CONV2D;
  if (next?.kind !== wanted || (!flatten && next.window === undefined)) {
    return {
      ok: false,
      reason: `needs, after conv '${block.name}', at most one max-pool and then a conv2d block, or a flatten and a dense block`,
    };
  }
  const convWiden = create(ConvWidenPathSchema, {
    conv: squareWindow(block.window),
    activation: ACTIVATIONS[block.activation],
    ...(pool === undefined ? {} : { pool: squareWindow(pool) }),
    ...(flatten ? {} : { nextConv: squareWindow(next.window as BlockWindow) }),
  });
  return { ok: true, path: { target: index, outputShape: next.outputShape, convWiden } };
}
