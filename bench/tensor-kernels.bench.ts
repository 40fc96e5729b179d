/**
 * Tensor kernel benchmark: for every wasm patch kernel (and gradient override), the median
 * ms of the stock tfjs-backend-wasm path against the patched one on the shapes of the
 * reference models (`tensor-backend-measurements.md` §1 per-kernel table), plus one MLP
 * and one CNN training step. Prints progress to stderr and one JSON object as the last
 * line of stdout.
 *
 *   npm run bench:tensor
 *
 * "Stock" keeps the two *missing* kernels patched (nothing else can run the CNN or GNN),
 * as the reference's "wasm stock" column did; kernels missing on stock wasm report
 * `stockMs: null`.
 */
import { describeTensorBackend, initTensorBackend, PATCH_GRADIENTS, PATCH_KERNELS, PatchKind, seededRng, tf } from '../src/tensor/index.js';
import { quantile } from './stats.js';

const WARMUP = 2;
const MIN_RUNS = 7;
const MIN_MS = 1500;

type Mode = 'stock' | 'patched';

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** Median wall ms of `op` (which returns tensors to read back and dispose). */
function timeMs(op: () => tf.Tensor | tf.Tensor[]): number {
  const once = (): number => {
    const start = performance.now();
    const out = op();
    const list = Array.isArray(out) ? out : [out];
    for (const t of list) t.dataSync();
    const elapsed = performance.now() - start;
    tf.dispose(list);
    return elapsed;
  };
  for (let i = 0; i < WARMUP; i += 1) once();
  const samples: number[] = [];
  const begin = performance.now();
  while (samples.length < MIN_RUNS || (performance.now() - begin < MIN_MS && samples.length < 50)) samples.push(once());
  return quantile(samples, 0.5);
}

const rng = seededRng(1);
function randomTensor(shape: number[], dtype: 'float32' | 'int32' = 'float32', max = 1): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const values =
    dtype === 'int32'
      ? Int32Array.from({ length: size }, () => rng.nextInt(max))
      : Float32Array.from({ length: size }, () => rng.nextFloat() * 2 - 1);
  return tf.tensor(values, shape, dtype);
}

/** Registrations of every patched name in both modes, captured once. */
interface Registrations {
  readonly kernels: Map<string, { stock?: tf.KernelConfig; patched: tf.KernelConfig }>;
  readonly gradients: Map<string, { stock?: tf.GradConfig; patched: tf.GradConfig }>;
}

async function captureRegistrations(): Promise<Registrations> {
  await initTensorBackend({ patchKernels: false });
  const stockKernels = new Map(PATCH_KERNELS.map((k) => [k.kernelName, tf.getKernel(k.kernelName, 'wasm')]));
  const stockGradients = new Map(PATCH_GRADIENTS.map((g) => [g.kernelName, tf.getGradient(g.kernelName)]));
  await initTensorBackend();
  const kernels = new Map(
    PATCH_KERNELS.map((k) => [k.kernelName, { stock: stockKernels.get(k.kernelName), patched: tf.getKernel(k.kernelName, 'wasm') }]),
  );
  const gradients = new Map(
    PATCH_GRADIENTS.map((g) => [g.kernelName, { stock: stockGradients.get(g.kernelName), patched: tf.getGradient(g.kernelName) }]),
  );
  return { kernels, gradients };
}

function useMode(registrations: Registrations, mode: Mode): void {
  for (const patch of PATCH_KERNELS) {
    const entry = registrations.kernels.get(patch.kernelName);
    if (entry === undefined) continue;
    // Missing kernels stay patched in both modes (there is no stock one).
    const config = mode === 'stock' && patch.kind === PatchKind.REPLACEMENT && entry.stock !== undefined ? entry.stock : entry.patched;
    tf.unregisterKernel(patch.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  for (const [name, entry] of registrations.gradients) {
    tf.unregisterGradient(name);
    tf.registerGradient(mode === 'stock' && entry.stock !== undefined ? entry.stock : entry.patched);
  }
}

interface KernelCase {
  readonly kernel: string;
  readonly shape: string;
  /** Whether the stock wasm backend has this kernel at all. */
  readonly stockExists: boolean;
  readonly run: () => tf.Tensor | tf.Tensor[];
}

function convOut(x: number[], f: number[], s: number, pad: 'same' | 'valid', depthwise = false): number[] {
  return tf.backend_util.computeConv2DInfo(
    x as [number, number, number, number],
    f as [number, number, number, number],
    s,
    1,
    pad,
    undefined,
    depthwise,
  ).outShape;
}

function kernelCases(): KernelCase[] {
  const cases: KernelCase[] = [];
  const run = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap) => (): tf.Tensor =>
    tf.engine().runKernel(name, inputs, attrs);

  const a784 = randomTensor([64, 784]);
  const dy256 = randomTensor([64, 256]);
  const w784 = randomTensor([784, 256]);
  cases.push({
    kernel: 'BatchMatMul',
    shape: 'transposeA [64,784]ᵀ·[64,256] (dense dW)',
    stockExists: true,
    run: run('BatchMatMul', { a: a784, b: dy256 }, { transposeA: true, transposeB: false }),
  });
  cases.push({
    kernel: 'BatchMatMul',
    shape: 'transposeB [64,256]·[784,256]ᵀ (dense dx)',
    stockExists: true,
    run: run('BatchMatMul', { a: dy256, b: w784 }, { transposeA: false, transposeB: true }),
  });
  const q = randomTensor([64, 32, 32]);
  const k = randomTensor([64, 32, 32]);
  cases.push({
    kernel: 'BatchMatMul',
    shape: 'batched q·kᵀ [64,32,32]·[64,32,32]ᵀ (attention)',
    stockExists: true,
    run: run('BatchMatMul', { a: q, b: k }, { transposeA: false, transposeB: true }),
  });
  const seq = randomTensor([64, 32, 64]);
  const proj = randomTensor([64, 64]);
  cases.push({
    kernel: 'BatchMatMul',
    shape: 'shared weight [64,32,64]·[64,64]',
    stockExists: true,
    run: run('BatchMatMul', { a: seq, b: proj }, { transposeA: false, transposeB: false }),
  });

  const w3 = randomTensor([3, 3, 32, 64]);
  const dyConv = randomTensor([64, 16, 16, 64]);
  cases.push({
    kernel: 'Conv2DBackpropInput',
    shape: 'stride 1: dy [64,16,16,64], W [3,3,32,64]',
    stockExists: true,
    run: run(
      'Conv2DBackpropInput',
      { dy: dyConv, filter: w3 },
      { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [64, 16, 16, 32] },
    ),
  });
  cases.push({
    kernel: 'Conv2DBackpropInput',
    shape: 'stride 2: dy [64,16,16,64] → x [64,32,32,32]',
    stockExists: true,
    run: run(
      'Conv2DBackpropInput',
      { dy: dyConv, filter: w3 },
      { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: [64, 32, 32, 32] },
    ),
  });
  const x16 = randomTensor([64, 16, 16, 32]);
  cases.push({
    kernel: 'Conv2DBackpropFilter',
    shape: 'x [64,16,16,32], dy [64,16,16,64]',
    stockExists: false,
    run: run('Conv2DBackpropFilter', { x: x16, dy: dyConv }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 32, 64] }),
  });

  const dw = randomTensor([3, 3, 32, 1]);
  const dyDw = randomTensor(convOut([64, 16, 16, 32], [3, 3, 32, 1], 1, 'same', true));
  cases.push({
    kernel: 'DepthwiseConv2dNativeBackpropInput',
    shape: 'dy [64,16,16,32], W [3,3,32,1]',
    stockExists: false,
    run: run(
      'DepthwiseConv2dNativeBackpropInput',
      { dy: dyDw, filter: dw },
      { strides: 1, dilations: 1, pad: 'same', inputShape: [64, 16, 16, 32] },
    ),
  });
  cases.push({
    kernel: 'DepthwiseConv2dNativeBackpropFilter',
    shape: 'x [64,16,16,32], dy [64,16,16,32]',
    stockExists: false,
    run: run(
      'DepthwiseConv2dNativeBackpropFilter',
      { x: x16, dy: dyDw },
      { strides: 1, dilations: 1, pad: 'same', filterShape: [3, 3, 32, 1] },
    ),
  });

  const xPool = randomTensor([64, 32, 32, 32]);
  const yPool = tf.maxPool(xPool as tf.Tensor4D, 2, 2, 'valid');
  const dyPool = randomTensor(yPool.shape);
  cases.push({
    kernel: 'MaxPoolGrad',
    shape: '[64,32,32,32] 2×2 stride 2',
    stockExists: true,
    run: run('MaxPoolGrad', { dy: dyPool, input: xPool, output: yPool }, { filterSize: 2, strides: 2, pad: 'valid' }),
  });

  const nodes = randomTensor([1600, 64]);
  const edges = randomTensor([6400], 'int32', 1600);
  cases.push({
    kernel: 'GatherV2',
    shape: '[1600,64] by 6400 indices',
    stockExists: true,
    run: run('GatherV2', { x: nodes, indices: edges }, { axis: 0, batchDims: 0 }),
  });
  const messages = randomTensor([6400, 64]);
  cases.push({
    kernel: 'UnsortedSegmentSum',
    shape: '[6400,64] → 1600 segments',
    stockExists: false,
    run: run('UnsortedSegmentSum', { x: messages, segmentIds: edges }, { numSegments: 1600 }),
  });
  cases.push({
    kernel: 'UnsortedSegmentSum (gradient)',
    shape: 'dy [1600,64], 6400 ids',
    stockExists: true,
    run: () => {
      const gradient = tf.getGradient('UnsortedSegmentSum');
      const grads = gradient.gradFunc(nodes, [edges], {}) as Record<string, () => tf.Tensor>;
      return (grads['x'] as () => tf.Tensor)();
    },
  });
  const labels = randomTensor([6400], 'int32', 10);
  cases.push({
    kernel: 'OneHot',
    shape: "6400 labels × 10 (stock int32 vs patched 'float32')",
    stockExists: true,
    run: () => tf.oneHot(labels, 10, 1, 0, 'int32'),
  });
  return cases;
}

interface ModelCase {
  readonly model: string;
  readonly step: () => tf.Tensor;
}

function modelCases(): ModelCase[] {
  const init = (shape: number[], scale: number): tf.Variable => tf.variable(tf.mul(randomTensor(shape), scale));
  // MLP 784-256-256-10, batch 64, SGD (reference §1).
  const mlp = [init([784, 256], 0.05), init([256], 0), init([256, 256], 0.06), init([256], 0), init([256, 10], 0.1), init([10], 0)];
  const xm = randomTensor([64, 784]);
  const ym = tf.oneHot(randomTensor([64], 'int32', 10), 10, 1, 0, 'int32');
  const ymf = tf.cast(ym, 'float32');
  const sgd = tf.train.sgd(0.01);
  const mlpLoss = (): tf.Scalar => {
    const [w1, b1, w2, b2, w3, b3] = mlp as [tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable];
    const h1 = tf.relu(tf.add(tf.matMul(xm, w1), b1));
    const h2 = tf.relu(tf.add(tf.matMul(h1, w2), b2));
    return tf.losses.softmaxCrossEntropy(ymf, tf.add(tf.matMul(h2, w3), b3)) as tf.Scalar;
  };
  // CNN: 32×32×3 → conv3×3×32 same + ReLU → maxpool 2 → conv3×3×64 same + ReLU → maxpool 2 → dense 10.
  const cnn = [
    init([3, 3, 3, 32], 0.2),
    init([32], 0),
    init([3, 3, 32, 64], 0.06),
    init([64], 0),
    init([8 * 8 * 64, 10], 0.02),
    init([10], 0),
  ];
  const xc = randomTensor([64, 32, 32, 3]);
  const sgd2 = tf.train.sgd(0.01);
  const cnnLoss = (): tf.Scalar => {
    const [k1, c1, k2, c2, w, b] = cnn as [tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable];
    const h1 = tf.maxPool(tf.relu(tf.add(tf.conv2d(xc as tf.Tensor4D, k1 as tf.Tensor4D, 1, 'same'), c1)) as tf.Tensor4D, 2, 2, 'valid');
    const h2 = tf.maxPool(tf.relu(tf.add(tf.conv2d(h1, k2 as tf.Tensor4D, 1, 'same'), c2)) as tf.Tensor4D, 2, 2, 'valid');
    return tf.losses.softmaxCrossEntropy(ymf, tf.add(tf.matMul(tf.reshape(h2, [64, -1]), w), b)) as tf.Scalar;
  };
  return [
    { model: 'MLP 784-256-256-10 train step (SGD, batch 64)', step: () => sgd.minimize(mlpLoss, true, mlp) as tf.Scalar },
    { model: 'CNN 2×(conv3×3 + pool) train step (SGD, batch 64)', step: () => sgd2.minimize(cnnLoss, true, cnn) as tf.Scalar },
  ];
}

async function main(): Promise<void> {
  const registrations = await captureRegistrations();
  const backend = describeTensorBackend();
  process.stderr.write(`tensor kernels: ${JSON.stringify(backend)}\n`);
  const kernels: Record<string, unknown>[] = [];
  for (const c of kernelCases()) {
    let stockMs: number | null = null;
    if (c.stockExists) {
      useMode(registrations, 'stock');
      stockMs = timeMs(c.run);
    }
    useMode(registrations, 'patched');
    const patchedMs = timeMs(c.run);
    const row = {
      kernel: c.kernel,
      shape: c.shape,
      stockMs: stockMs === null ? null : round(stockMs),
      patchedMs: round(patchedMs),
      ratio: stockMs === null ? null : round(stockMs / patchedMs, 1),
    };
    kernels.push(row);
    process.stderr.write(
      `${c.kernel.padEnd(36)} ${c.shape.padEnd(52)} stock ${String(row.stockMs).padStart(8)} ms  patched ${String(row.patchedMs).padStart(8)} ms  ×${row.ratio ?? '—'}\n`,
    );
  }
  const models: Record<string, unknown>[] = [];
  for (const m of modelCases()) {
    useMode(registrations, 'stock');
    const stockMs = timeMs(m.step);
    useMode(registrations, 'patched');
    const patchedMs = timeMs(m.step);
    const row = { model: m.model, stockMs: round(stockMs), patchedMs: round(patchedMs), ratio: round(stockMs / patchedMs, 1) };
    models.push(row);
    process.stderr.write(`${m.model.padEnd(52)} stock ${row.stockMs} ms  patched ${row.patchedMs} ms  ×${row.ratio}\n`);
  }
  useMode(registrations, 'patched');
  process.stdout.write(
    `${JSON.stringify({
      bench: 'tensor-kernels',
      node: process.version,
      backend,
      protocol: `median of ≥${MIN_RUNS} runs (≥${MIN_MS} ms) after ${WARMUP} warm-ups; stock keeps the missing kernels patched`,
      kernels,
      models,
    })}\n`,
  );
}

await main();
