/**
 * One parity suite per registered wasm patch kernel: the kernel is run directly
 * (`engine().runKernel`) on wasm — where the patch is registered — and on the cpu oracle,
 * over seeded random shapes covering stride 1 and 2, 'same'/'valid'/explicit padding and
 * batch > 1. Every case must agree within a relative error of 1e-5; the worst error per
 * kernel is printed at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compareOnBackends,
  initTensorBackend,
  maxRelativeError,
  PATCH_GRADIENTS,
  PATCH_KERNELS,
  runOnTensorBackend,
  tf,
  type ParityTensor,
} from '../../src/tensor/index.js';
import { collapsePermutation } from '../../src/tensor/kernels/transpose.js';
import { ints, levels, PARITY_TOLERANCE, testRng, toTensor, uniform, WorstErrorLedger } from './fixtures.js';

const ledger = new WorstErrorLedger();
const rng = testRng(20_261_127);

type Pad = 'same' | 'valid' | number[][];

beforeAll(async () => {
  await initTensorBackend();
});

afterAll(() => {
  console.info(ledger.format('worst relative error vs cpu, per patched kernel:'));
});

/** Runs `kernelName` on both backends and asserts parity; returns the error. */
async function expectKernelParity(
  kernelName: string,
  inputs: Record<string, ParityTensor>,
  attrs: tf.NamedAttrMap,
  label: string,
): Promise<number> {
  const { worstRelativeError } = await compareOnBackends(inputs, (t) => tf.engine().runKernel(kernelName, t, attrs) as tf.Tensor);
  ledger.record(kernelName, worstRelativeError);
  expect(worstRelativeError, `${kernelName} ${label}`).toBeLessThanOrEqual(PARITY_TOLERANCE);
  return worstRelativeError;
}

function outShape(
  xShape: number[],
  filterShape: number[],
  strides: [number, number],
  pad: Pad,
  depthwise = false,
  dilations: [number, number] = [1, 1],
): number[] {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations,
    pad as 'same',
    undefined,
    depthwise,
  ).outShape;
}

interface ConvCase {
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly ci: number;
  readonly co: number;
  readonly kh: number;
  readonly kw: number;
  readonly strides: [number, number];
  readonly pad: Pad;
}

/** Fixed stride × padding grid plus seeded random geometries (batch ≥ 1). */
function convCases(): ConvCase[] {
  const fixed: ConvCase[] = [];
  for (const s of [1, 2]) {
    for (const pad of ['same', 'valid'] as const) {
      fixed.push({ n: 2, h: 9, w: 8, ci: 3, co: 4, kh: 3, kw: 3, strides: [s, s], pad });
    }
  }
  fixed.push({ n: 3, h: 7, w: 6, ci: 2, co: 5, kh: 2, kw: 3, strides: [2, 1], pad: 'same' });
  fixed.push({ n: 1, h: 6, w: 6, ci: 4, co: 2, kh: 1, kw: 1, strides: [2, 2], pad: 'valid' });
  fixed.push({
    n: 2,
    h: 8,
    w: 7,
    ci: 3,
    co: 3,
    kh: 3,
    kw: 3,
    strides: [2, 2],
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  });
  fixed.push({ n: 2, h: 10, w: 9, ci: 2, co: 3, kh: 5, kw: 4, strides: [3, 2], pad: 'same' });
  // Explicit padding larger than the filter (the input gradient's "full" padding goes negative).
  fixed.push({
    n: 1,
    h: 5,
    w: 6,
    ci: 2,
    co: 3,
    kh: 1,
    kw: 2,
    strides: [1, 1],
    pad: [
      [0, 0],
      [2, 1],
      [3, 0],
      [0, 0],
    ],
  });
  fixed.push({
    n: 2,
    h: 6,
    w: 5,
    ci: 3,
    co: 2,
    kh: 2,
    kw: 1,
    strides: [2, 2],
    pad: [
      [0, 0],
      [3, 2],
      [0, 2],
      [0, 0],
    ],
  });
  const random: ConvCase[] = [];
  for (let i = 0; i < 6; i += 1) {
    const kh = 1 + rng.nextInt(4);
    const kw = 1 + rng.nextInt(4);
    const s = 1 + rng.nextInt(2);
    random.push({
      n: 1 + rng.nextInt(3),
      h: kh + 2 + rng.nextInt(6),
      w: kw + 2 + rng.nextInt(6),
      ci: 1 + rng.nextInt(4),
      co: 1 + rng.nextInt(5),
      kh,
      kw,
      strides: [s, s],
      pad: rng.nextInt(2) === 0 ? 'same' : 'valid',
    });
  }
  return [...fixed, ...random];
}

const describeCase = (c: ConvCase): string =>
  `x[${c.n},${c.h},${c.w},${c.ci}] k${c.kh}x${c.kw} s${c.strides.join('x')} ${typeof c.pad === 'string' ? c.pad : 'explicit'}`;

describe('wasm patch kernel registry', () => {
  it('has a parity suite for every registered patch kernel and gradient override', () => {
    const covered = new Set([
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'DepthwiseConv2dNativeBackpropInput',
      'DepthwiseConv2dNativeBackpropFilter',
      'BatchMatMul',
      'MaxPoolGrad',
      'GatherV2',
      'UnsortedSegmentSum',
      'OneHot',
      'Sum',
      'Transpose',
    ]);
    expect(PATCH_KERNELS.map((k) => k.kernelName).filter((name) => !covered.has(name))).toEqual([]);
    // Gradient overrides: UnsortedSegmentSum below and in the GNN of gradient-parity.test.ts;
    // BatchMatMul in the attention model and the 2-D cross-check there.
    expect(PATCH_GRADIENTS.map((g) => g.kernelName)).toEqual(['UnsortedSegmentSum', 'BatchMatMul']);
  });
});

describe('Conv2DBackpropFilter (missing on stock wasm)', () => {
  it('matches cpu over stride 1/2, same/valid/explicit padding and batch > 1', async () => {
    for (const c of convCases()) {
      const filterShape = [c.kh, c.kw, c.ci, c.co];
      const xShape = [c.n, c.h, c.w, c.ci];
      await expectKernelParity(
        'Conv2DBackpropFilter',
        { x: uniform(rng, xShape), dy: uniform(rng, outShape(xShape, filterShape, c.strides, c.pad)) },
        { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape },
        describeCase(c),
      );
    }
  });
});

describe('Conv2DBackpropInput (stock wasm is a scalar loop)', () => {
  it('matches cpu over stride 1/2, same/valid/explicit padding and batch > 1', async () => {
    for (const c of convCases()) {
      const filterShape = [c.kh, c.kw, c.ci, c.co];
      const xShape = [c.n, c.h, c.w, c.ci];
      await expectKernelParity(
        'Conv2DBackpropInput',
        { dy: uniform(rng, outShape(xShape, filterShape, c.strides, c.pad)), filter: uniform(rng, filterShape) },
        { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: xShape },
        describeCase(c),
      );
    }
  });
});

describe('DepthwiseConv2dNativeBackpropInput (missing on stock wasm)', () => {
  it('matches cpu for multipliers 1 and 2, stride 1/2, dilation 2, same/valid', async () => {
    const cases = convCases().map((c, i) => ({ ...c, m: 1 + (i % 2), dilations: [1, 1] as [number, number] }));
    for (const c of cases) {
      const filterShape = [c.kh, c.kw, c.ci, c.m];
      const xShape = [c.n, c.h, c.w, c.ci];
      await expectKernelParity(
        'DepthwiseConv2dNativeBackpropInput',
        {
          dy: uniform(rng, outShape(xShape, filterShape, c.strides, c.pad, true, c.dilations)),
          filter: uniform(rng, filterShape),
        },
        { strides: c.strides, dilations: c.dilations, pad: c.pad, inputShape: xShape },
        `${describeCase(c)} m${c.m} d${c.dilations.join('x')}`,
      );
    }
  });
});

describe('DepthwiseConv2dNativeBackpropFilter (missing on stock wasm)', () => {
  it('matches cpu for multipliers 1 and 2, stride 1/2, dilation 2, same/valid', async () => {
    const cases = convCases().map((c, i) => ({ ...c, m: 1 + (i % 2), dilations: [1, 1] as [number, number] }));
    for (const c of cases) {
      const filterShape = [c.kh, c.kw, c.ci, c.m];
      const xShape = [c.n, c.h, c.w, c.ci];
      await expectKernelParity(
        'DepthwiseConv2dNativeBackpropFilter',
        { x: uniform(rng, xShape), dy: uniform(rng, outShape(xShape, filterShape, c.strides, c.pad, true, c.dilations)) },
        { strides: c.strides, dilations: c.dilations, pad: c.pad, filterShape },
        `${describeCase(c)} m${c.m} d${c.dilations.join('x')}`,
      );
    }
  });
});

describe('depthwise backprops with dilation > 1', () => {
  // The cpu kernels ignore dilation (the public gradient refuses dilated depthwise convs),
  // so the oracle is the equivalent undilated problem: a filter dilated by zero insertion.
  const dilateFilter = (f: ParityTensor, dh: number, dw: number): ParityTensor => {
    const [kh, kw, c, m] = f.shape as [number, number, number, number];
    const eh = (kh - 1) * dh + 1;
    const ew = (kw - 1) * dw + 1;
    const values = new Float32Array(eh * ew * c * m);
    for (let r = 0; r < kh; r += 1) {
      for (let q = 0; q < kw; q += 1) {
        const src = (r * kw + q) * c * m;
        values.set(f.values.subarray(src, src + c * m) as Float32Array, (r * dh * ew + q * dw) * c * m);
      }
    }
    return { shape: [eh, ew, c, m], values };
  };
  const geometries: [string, number[], number[], [number, number], Pad][] = [
    ['3x3 m2 d2 same', [2, 9, 8, 3], [3, 3, 3, 2], [2, 2], 'same'],
    ['3x2 m1 d2x1 valid', [1, 8, 7, 2], [3, 2, 2, 1], [2, 1], 'valid'],
  ];

  /** Runs one kernel on one backend and reads its output back. */
  const runOn = (
    backend: 'wasm' | 'cpu',
    kernel: string,
    inputs: Record<string, ParityTensor>,
    attrs: tf.NamedAttrMap,
    crop?: (t: tf.Tensor) => tf.Tensor,
  ) =>
    runOnTensorBackend(backend, () =>
      tf.tidy(() => {
        const built = Object.fromEntries(Object.entries(inputs).map(([name, data]) => [name, toTensor(data)]));
        const out = tf.engine().runKernel(kernel, built, attrs) as tf.Tensor;
        return Float32Array.from((crop === undefined ? out : crop(out)).dataSync());
      }),
    );

  it.each(geometries)('input gradient matches the undilated cpu equivalent: %s', async (label, xShape, fShape, dil, pad) => {
    const filter = uniform(rng, fShape);
    const dy = uniform(rng, outShape(xShape, fShape, [1, 1], pad, true, dil));
    const attrs = { strides: [1, 1], pad, inputShape: xShape };
    const kernel = 'DepthwiseConv2dNativeBackpropInput';
    const candidate = await runOn('wasm', kernel, { dy, filter }, { ...attrs, dilations: dil });
    const reference = await runOn('cpu', kernel, { dy, filter: dilateFilter(filter, dil[0], dil[1]) }, { ...attrs, dilations: [1, 1] });
    const error = maxRelativeError(candidate, reference);
    ledger.record(kernel, error);
    expect(error, label).toBeLessThanOrEqual(PARITY_TOLERANCE);
  });

  it.each(geometries)('filter gradient matches the undilated cpu equivalent: %s', async (label, xShape, fShape, dil, pad) => {
    const x = uniform(rng, xShape);
    const dy = uniform(rng, outShape(xShape, fShape, [1, 1], pad, true, dil));
    const [kh, kw, c, m] = fShape as [number, number, number, number];
    const kernel = 'DepthwiseConv2dNativeBackpropFilter';
    const candidate = await runOn('wasm', kernel, { x, dy }, { strides: [1, 1], pad, dilations: dil, filterShape: fShape });
    const eh = (kh - 1) * dil[0] + 1;
    const ew = (kw - 1) * dil[1] + 1;
    // The gradient of the zero-inserted filter, at the taps the dilated filter has.
    const reference = await runOn(
      'cpu',
      kernel,
      { x, dy },
      { strides: [1, 1], pad, dilations: [1, 1], filterShape: [eh, ew, c, m] },
      (full) => tf.stridedSlice(full, [0, 0, 0, 0], [eh, ew, c, m], [dil[0], dil[1], 1, 1]),
    );
    const error = maxRelativeError(candidate, reference);
    ledger.record(kernel, error);
    expect(error, label).toBeLessThanOrEqual(PARITY_TOLERANCE);
  });
});

describe('BatchMatMul (stock wasm loops on transposes and batches)', () => {
  const cases: [string, number[], number[], boolean, boolean][] = [
    ['2-D plain', [7, 5], [5, 6], false, false],
    ['2-D transposeA (dW)', [9, 7], [9, 4], true, false],
    ['2-D transposeB (dx)', [7, 5], [6, 5], false, true],
    ['2-D both transposed', [5, 7], [6, 5], true, true],
    ['shared b [B,M,K]·[K,N]', [3, 4, 5], [5, 6], false, false],
    ['shared b, transposed', [3, 5, 4], [6, 5], true, true],
    ['shared a [M,K]·[B,K,N]', [4, 5], [3, 5, 6], false, false],
    ['shared a, transposeB', [4, 5], [3, 6, 5], false, true],
    ['batched (attention) q·kᵀ', [6, 5, 8], [6, 7, 8], false, true],
    ['batched a·b', [6, 5, 7], [6, 7, 8], false, false],
    ['batched transposeA', [4, 7, 5], [4, 7, 3], true, false],
    ['batched rank 4 [2,3,M,K]', [2, 3, 4, 5], [2, 3, 5, 6], false, false],
    ['partial broadcast [2,1]·[1,3] (stock)', [2, 1, 4, 5], [1, 3, 5, 6], false, false],
  ];
  it.each(cases)('matches cpu: %s', async (label, aShape, bShape, transposeA, transposeB) => {
    await expectKernelParity('BatchMatMul', { a: uniform(rng, aShape), b: uniform(rng, bShape) }, { transposeA, transposeB }, label);
  });
});

describe('MaxPoolGrad (stock wasm is slow)', () => {
  const cases: [string, number[], number, number, Pad][] = [
    ['2x2 s2 valid', [2, 8, 8, 3], 2, 2, 'valid'],
    ['3x3 s2 same (overlapping)', [2, 9, 7, 4], 3, 2, 'same'],
    ['3x3 s1 same', [1, 6, 6, 2], 3, 1, 'same'],
    ['2x2 s1 valid', [3, 5, 6, 1], 2, 1, 'valid'],
    ['3x3 s3 valid, ragged', [2, 10, 8, 5], 3, 3, 'valid'],
  ];
  it.each(cases)('matches cpu, including ties (first max wins): %s', async (label, shape, size, stride, pad) => {
    for (const data of [uniform(rng, shape), levels(rng, shape, 3)]) {
      const x = tf.tensor(data.values, shape);
      const y = tf.maxPool(x as tf.Tensor4D, size, stride, pad as 'same');
      const output: ParityTensor = { shape: y.shape, values: Float32Array.from(y.dataSync()) };
      tf.dispose([x, y]);
      await expectKernelParity(
        'MaxPoolGrad',
        { dy: uniform(rng, output.shape), input: data, output },
        { filterSize: size, strides: stride, pad },
        label,
      );
    }
  });

  it('routes nothing from windows of NaN or −∞ and keeps the first of equal maxima, 4 channels at a time and the rest', async () => {
    const shape = [2, 6, 6, 9];
    const data = levels(rng, shape, 2);
    const values = data.values as Float32Array;
    for (let i = 0; i < values.length; i += 7) values[i] = Number.NaN;
    for (let i = 3; i < values.length; i += 5) values[i] = Number.NEGATIVE_INFINITY;
    // One whole window of the first channel group is NaN and −∞ only.
    for (const [r, c] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ] as const) {
      for (let d = 0; d < 4; d += 1) values[(r * 6 + c) * 9 + d] = r === 0 ? Number.NaN : Number.NEGATIVE_INFINITY;
    }
    const x = tf.tensor(values, shape);
    const y = tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid');
    const output: ParityTensor = { shape: y.shape, values: Float32Array.from(y.dataSync()) };
    tf.dispose([x, y]);
    await expectKernelParity(
      'MaxPoolGrad',
      { dy: uniform(rng, output.shape), input: data, output },
      { filterSize: 2, strides: 2, pad: 'valid' },
      'NaN/−∞',
    );
  });
});

describe('GatherV2 (stock wasm is slow)', () => {
  const cases: [string, ParityTensor, ParityTensor, number, number][] = [
    ['rows of [40,16] by 100 ids', uniform(rng, [40, 16]), ints(rng, [100], 0, 40), 0, 0],
    ['rows of [30,3] (short slices)', uniform(rng, [30, 3]), ints(rng, [50], 0, 30), 0, 0],
    ['axis 1 of [4,10,5]', uniform(rng, [4, 10, 5]), ints(rng, [7], 0, 10), 1, 0],
    ['last axis, 2-D indices', uniform(rng, [3, 6]), ints(rng, [2, 4], 0, 6), 1, 0],
    ['batchDims 1', uniform(rng, [3, 8, 4]), ints(rng, [3, 5], 0, 8), 1, 1],
    ['int32 params', ints(rng, [20, 4], -50, 50), ints(rng, [33], 0, 20), 0, 0],
  ];
  it.each(cases)('matches cpu: %s', async (label, x, indices, axis, batchDims) => {
    await expectKernelParity('GatherV2', { x, indices }, { axis, batchDims }, label);
  });

  it('rejects an out-of-range index like the stock kernel', () => {
    const x = tf.zeros([4, 2]);
    const ids = tf.tensor1d([0, 4], 'int32');
    expect(() => tf.gather(x, ids)).toThrow(/index value 4/);
    tf.dispose([x, ids]);
  });
});

describe('UnsortedSegmentSum (missing on stock wasm)', () => {
  const cases: [string, ParityTensor, ParityTensor, number][] = [
    ['[400,16] into 50 segments', uniform(rng, [400, 16]), ints(rng, [400], 0, 50), 50],
    ['drops negative and too-large ids', uniform(rng, [60, 5]), ints(rng, [60], -5, 25), 20],
    ['1-D data', uniform(rng, [90]), ints(rng, [90], 0, 9), 9],
    ['int32 data', ints(rng, [50, 3], -9, 9), ints(rng, [50], 0, 7), 7],
  ];
  it.each(cases)('matches cpu: %s', async (label, x, segmentIds, numSegments) => {
    await expectKernelParity('UnsortedSegmentSum', { x, segmentIds }, { numSegments }, label);
  });

  it('has a gradient that gathers dy and zeroes dropped ids', async () => {
    const data = uniform(rng, [8, 3]);
    const ids = new Int32Array([0, 2, -1, 1, 5, 2, 0, 1]);
    const dy = uniform(rng, [3, 3]);
    const { worstRelativeError } = await compareOnBackends({ x: data, ids: { shape: [8], values: ids }, dy }, (t) =>
      tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.unsortedSegmentSum(x, t['ids'] as tf.Tensor1D, 3), t['dy'] as tf.Tensor)))(
        t['x'] as tf.Tensor,
      ),
    );
    ledger.record('UnsortedSegmentSum gradient', worstRelativeError);
    expect(worstRelativeError).toBeLessThanOrEqual(PARITY_TOLERANCE);
    const x = tf.tensor(data.values, [8, 3]);
    const g = tf.grad((v: tf.Tensor) =>
      tf.sum(tf.mul(tf.unsortedSegmentSum(v, tf.tensor1d(ids, 'int32'), 3), tf.tensor(dy.values, [3, 3]))),
    )(x);
    const rows = g.arraySync() as number[][];
    const dyRows = Array.from({ length: 3 }, (_, r) => Array.from(dy.values.subarray(r * 3, r * 3 + 3)));
    expect(rows[2]!.every((v) => v === 0)).toBe(true); // id −1
    expect(rows[4]!.every((v) => v === 0)).toBe(true); // id 5 ≥ numSegments
    expect(rows[1]).toEqual(dyRows[2]);
    tf.dispose([x, g]);
  });
});

describe('OneHot (stock wasm returns int32 bit patterns for float32)', () => {
  const cases: [string, ParityTensor, number, number, number, tf.DataType][] = [
    ['float32 1/0', ints(rng, [12], 0, 5), 5, 1, 0, 'float32'],
    ['float32 label smoothing 0.9/0.025', ints(rng, [3, 4], 0, 5), 5, 0.9, 0.025, 'float32'],
    ['out-of-range ids → off row', ints(rng, [10], -2, 8), 6, 1, 0, 'float32'],
    ['int32', ints(rng, [9], 0, 4), 4, 3, -1, 'int32'],
  ];
  it.each(cases)('matches cpu: %s', async (label, indices, depth, onValue, offValue, dtype) => {
    await expectKernelParity('OneHot', { indices }, { depth, onValue, offValue, dtype }, label);
  });
});

describe('Sum over leading axes (stock wasm transposes first)', () => {
  const cases: [string, number[], number | number[], boolean][] = [
    ['bias gradient of a conv, [0,1,2]', [8, 6, 5, 7], [0, 1, 2], false],
    ['bias gradient of a dense layer, 0', [33, 9], 0, false],
    ['keepDims, unsorted and negative axes', [4, 3, 6], [1, -3], true],
    ['delegated: inner axis', [5, 4, 3], [2], false],
    ['delegated: middle axis', [5, 4, 3], 1, true],
    ['delegated: every axis', [5, 4], [0, 1], false],
  ];
  it.each(cases)('matches cpu: %s', async (label, shape, axis, keepDims) => {
    const error = await expectKernelParity('Sum', { x: uniform(rng, shape) }, { axis, keepDims }, label);
    // Leading axes accumulate as the cpu backend does (float64, row order): exact.
    if (label.startsWith('bias') || label.startsWith('keepDims')) expect(error).toBe(0);
  });

  it('keeps the reduced axes as 1 with keepDims', () => {
    const x = tf.ones([2, 3, 4]);
    const y = tf.sum(x, [0, 1], true);
    expect(y.shape).toEqual([1, 1, 4]);
    expect(Array.from(y.dataSync())).toEqual([6, 6, 6, 6]);
    tf.dispose([x, y]);
  });
});

describe('Transpose (stock wasm walks elements one by one)', () => {
  const cases: [string, number[], number[]][] = [
    ['2-D, multiples of 4', [8, 12], [1, 0]],
    ['2-D, ragged edges', [7, 5], [1, 0]],
    ['batched [0,2,1], ragged', [3, 9, 6], [0, 2, 1]],
    ['size-1 batch (the dense weight gradient)', [1, 13, 11], [0, 2, 1]],
    ['merged axes: [1,2,0] is a 2-D swap', [6, 3, 5], [1, 2, 0]],
    ['4-D [0,1,3,2]', [2, 3, 5, 4], [0, 1, 3, 2]],
    ['delegated: a true 4-D permutation', [2, 3, 5, 4], [3, 1, 2, 0]],
    ['delegated: identity', [4, 5], [0, 1]],
  ];
  it.each(cases)('matches cpu exactly: %s', async (label, shape, perm) => {
    expect(await expectKernelParity('Transpose', { x: uniform(rng, shape) }, { perm }, label)).toBe(0);
  });

  it('moves int32 data too', async () => {
    expect(await expectKernelParity('Transpose', { x: ints(rng, [5, 9], -100, 100) }, { perm: [1, 0] }, 'int32')).toBe(0);
  });

  it('reduces a permutation to its merged, size-1-free form', () => {
    expect(collapsePermutation([1, 128, 784], [0, 2, 1])).toEqual({ shape: [128, 784], perm: [1, 0] });
    expect(collapsePermutation([6, 3, 5], [1, 2, 0])).toEqual({ shape: [6, 15], perm: [1, 0] });
    expect(collapsePermutation([2, 3, 5, 4], [0, 1, 3, 2])).toEqual({ shape: [6, 5, 4], perm: [0, 2, 1] });
    expect(collapsePermutation([2, 3, 5, 4], [3, 1, 2, 0])).toEqual({ shape: [2, 15, 4], perm: [2, 1, 0] });
    expect(collapsePermutation([4, 5], [0, 1])).toEqual({ shape: [20], perm: [0] });
  });
});
