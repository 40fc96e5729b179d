/**
 * Training benchmark (`npm run bench:train`): median milliseconds per training step of
 * the Tolaria trainer for the MLP host (784-256-256-10) and the CNN host (two 3×3 conv +
 * 2×2 pool blocks on 32×32×3), batch 64, Adam; the bare tensor step without the trainer
 * around it; forward-only time; and the same models in PyTorch on this machine as the
 * anchor (`bench/anchors/torch_anchor.py`, Debian `python3-torch`, 2 threads, with the
 * BLAS it loaded), with the ratios. Progress goes to stderr; the last line of stdout is
 * one JSON object.
 *
 * Protocol (as the anchor and `tensor-backend-measurements.md` §1): 3 warm-up steps, then
 * the median of at least 7 timed steps (up to 1.5 s or 50 steps). Inputs are random, so
 * the figures measure compute, not data loading. Ours and the anchor run in interleaved
 * rounds (ours, PyTorch, ours, PyTorch, …; `ESPER_BENCH_ROUNDS`, default 3) so load on the
 * machine hits both alike; each figure is the median over rounds and each ratio the median
 * of the rounds' ratios.
 *
 * The anchor is PyTorch at its best here: a machine may force OpenBLAS's kernel and cache
 * size (`OPENBLAS_CORETYPE`, `OPENBLAS_L2_SIZE`; one such setting made the anchor's MLP step
 * ~4x slower), so both are unset for its process alone, and the JSON says what was unset and
 * which kernel OpenBLAS then ran (`openblas_get_corename`).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { MemoryTelemetrySink } from '../src/core/index.js';
import { describeTensorBackend, initTensorBackend, oneHotFloat, seededRng, tf } from '../src/tensor/index.js';
import { PerVariableAdam } from '../src/tolaria/adam.js';
import { ArraySplit, cnnHost, mlpHost, Trainer, type Dataset, type HostModel } from '../src/tolaria/index.js';

const BATCH = 64;
const WARMUP = 3;
const MIN_RUNS = 7;
const MIN_MS = 1500;
const MAX_RUNS = 50;
const ANCHOR = path.resolve(import.meta.dirname, 'anchors/torch_anchor.py');
/** Interleaved rounds of ours and the anchor. */
const ROUNDS = Number(process.env['ESPER_BENCH_ROUNDS'] ?? 3);
/** Machine overrides of OpenBLAS's own choices, unset for the anchor's process. */
const OPENBLAS_OVERRIDES = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const;
const PYTHON = '/usr/bin/python3';

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const log = (message: string): void => {
  process.stderr.write(`${message}\n`);
};

function randomDataset(inputShape: number[], examples: number): Dataset {
  const rng = seededRng(7);
  const size = inputShape.reduce((a, b) => a * b, 1);
  const split = (n: number): ArraySplit =>
    new ArraySplit({
      inputShape,
      inputs: Float32Array.from({ length: n * size }, () => rng.nextFloat()),
      labels: Int32Array.from({ length: n }, () => rng.nextInt(10)),
    });
  return { name: `random${inputShape.join('x')}`, inputShape, numClasses: 10, train: split(examples), validation: split(BATCH) };
}

function enough(samples: readonly number[], startedMs: number): boolean {
  return samples.length >= MIN_RUNS && (performance.now() - startedMs >= MIN_MS || samples.length >= MAX_RUNS);
}

/** Median wall ms of one Trainer step (data, compute, packets; no controller attached). */
async function trainerStepMs(host: HostModel, dataset: Dataset): Promise<{ ms: number; samples: number }> {
  const stop = new AbortController();
  const samples: number[] = [];
  let started = 0;
  const trainer = new Trainer({
    trainingRunId: 'bench-train',
    host,
    dataset,
    epochs: 1000,
    batchSize: BATCH,
    optimizer: { kind: 'adam', learningRate: 1e-3 },
    telemetry: new MemoryTelemetrySink(10),
    onStep: (r) => {
      if (r.globalStep === WARMUP) started = performance.now();
      if (r.globalStep > WARMUP) samples.push(r.stepMs);
      if (r.globalStep > WARMUP && enough(samples, started)) stop.abort();
    },
  });
  await trainer.run({ signal: stop.signal });
  trainer.dispose();
  return { ms: median(samples), samples: samples.length };
}

/** Times `once` (which must read its result back) with the protocol. */
function timeMs(once: () => void): { ms: number; samples: number } {
  for (let i = 0; i < WARMUP; i += 1) once();
  const samples: number[] = [];
  const started = performance.now();
  while (!enough(samples, started)) {
    const t = performance.now();
    once();
    samples.push(performance.now() - t);
  }
  return { ms: median(samples), samples: samples.length };
}

/**
 * The bare step: forward, loss, gradients, Adam update, loss read-back — with the trainer's
 * own optimizer ({@link PerVariableAdam}), so the difference to the trainer's step is the
 * trainer around it, not a different Adam.
 */
function rawStepMs(host: HostModel, dataset: Dataset): { ms: number; samples: number } {
  const optimizer = new PerVariableAdam(1e-3, 0.9, 0.999);
  const indices = Int32Array.from({ length: BATCH }, (_, i) => i);
  const batch = dataset.train.batch(indices);
  const variables = host.trainableVariables();
  const result = timeMs(() => {
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(oneHotFloat(batch.labels, 10), host.forward(batch.inputs, { training: true })) as tf.Scalar,
        variables,
      );
      optimizer.applyGradients(variables.map((v) => ({ name: v.name, tensor: grads[v.name] as tf.Tensor })));
      return value;
    });
    loss.dataSync();
    loss.dispose();
  });
  optimizer.dispose();
  tf.dispose([batch.inputs, batch.labels]);
  return result;
}

function forwardMs(host: HostModel, dataset: Dataset): { ms: number; samples: number } {
  const batch = dataset.train.batch(Int32Array.from({ length: BATCH }, (_, i) => i));
  const result = timeMs(() => {
    const out = tf.tidy(() => host.forward(batch.inputs, { training: false }));
    out.dataSync();
    out.dispose();
  });
  tf.dispose([batch.inputs, batch.labels]);
  return result;
}

interface ModelFigures {
  readonly trainStepMs: number;
  readonly rawStepMs: number;
  readonly forwardMs: number;
  readonly parameters: number;
  readonly trainSamples: number;
}

async function measure(name: string, build: (hostId: string) => HostModel, inputShape: number[]): Promise<ModelFigures> {
  const dataset = randomDataset(inputShape, BATCH * 20);
  const host = build(`${name}-trainer`);
  log(`${name}: trainer step…`);
  const trainer = await trainerStepMs(host, dataset);
  const bare = build(`${name}-raw`);
  log(`${name}: bare step…`);
  const raw = rawStepMs(bare, dataset);
  log(`${name}: forward…`);
  const forward = forwardMs(bare, dataset);
  const parameters = host.variables.reduce((n, v) => n + v.size, 0);
  host.dispose();
  bare.dispose();
  log(
    `${name}: trainer ${trainer.ms.toFixed(2)} ms/step (n=${trainer.samples}), bare ${raw.ms.toFixed(2)} ms, forward ${forward.ms.toFixed(2)} ms`,
  );
  return {
    trainStepMs: round(trainer.ms),
    rawStepMs: round(raw.ms),
    forwardMs: round(forward.ms),
    parameters,
    trainSamples: trainer.samples,
  };
}

interface AnchorModel {
  readonly trainStepMs: number;
  readonly forwardMs: number;
}
type Anchor =
  | { skipped: string }
  | { torch: string; threads: number; blas: unknown; openblas: unknown; env: unknown; mlp: AnchorModel; cnn: AnchorModel };

function runAnchor(): Anchor {
  log('PyTorch anchor…');
  const env = { ...process.env };
  for (const name of OPENBLAS_OVERRIDES) delete env[name];
  const run = spawnSync(PYTHON, [ANCHOR, '--threads', '2', '--batch', String(BATCH)], { encoding: 'utf8', timeout: 300_000, env });
  if (run.error !== undefined) return { skipped: `could not run ${PYTHON}: ${run.error.message}` };
  if (run.status !== 0) return { skipped: `torch_anchor.py exited ${run.status}: ${run.stderr.trim().split('\n').at(-1) ?? ''}` };
  const last = run.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as Anchor;
  } catch {
    return { skipped: `torch_anchor.py printed no JSON: ${last}` };
  }
}

const medianOf = (values: readonly number[]): number => round(median(values), 3);

/** Per-model figures over rounds: each the median of the rounds'. */
function overRounds(rounds: readonly ModelFigures[]): ModelFigures & { readonly rounds: readonly ModelFigures[] } {
  return {
    trainStepMs: medianOf(rounds.map((r) => r.trainStepMs)),
    rawStepMs: medianOf(rounds.map((r) => r.rawStepMs)),
    forwardMs: medianOf(rounds.map((r) => r.forwardMs)),
    parameters: (rounds[0] as ModelFigures).parameters,
    trainSamples: rounds.reduce((n, r) => n + r.trainSamples, 0),
    rounds,
  };
}

async function main(): Promise<void> {
  await initTensorBackend();
  const unset = Object.fromEntries(
    OPENBLAS_OVERRIDES.flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name]]])),
  );
  const mlpRounds: ModelFigures[] = [];
  const cnnRounds: ModelFigures[] = [];
  const anchors: Anchor[] = [];
  for (let round = 1; round <= ROUNDS; round += 1) {
    log(`round ${round}/${ROUNDS}`);
    mlpRounds.push(
      await measure('mlp', (hostId) => mlpHost({ inputSize: 784, hidden: [256, 256], numClasses: 10, seed: 1, hostId }), [784]),
    );
    cnnRounds.push(
      await measure(
        'cnn',
        (hostId) => cnnHost({ inputShape: [32, 32, 3], channels: [32, 64], numClasses: 10, seed: 1, hostId }),
        [32, 32, 3],
      ),
    );
    const anchor = runAnchor();
    anchors.push(anchor);
    if ('skipped' in anchor) {
      log(`PyTorch anchor skipped: ${anchor.skipped}`);
      break;
    }
  }
  const mlp = overRounds(mlpRounds);
  const cnn = overRounds(cnnRounds);
  const ran = anchors.filter((a): a is Exclude<Anchor, { skipped: string }> => !('skipped' in a));
  const ratio = (ours: readonly ModelFigures[], pick: (r: ModelFigures) => number, theirs: (a: (typeof ran)[number]) => number) =>
    medianOf(ran.map((a, i) => pick(ours[i] as ModelFigures) / theirs(a)));
  const ratios =
    ran.length === 0
      ? undefined
      : {
          mlpTrainStep: ratio(
            mlpRounds,
            (r) => r.trainStepMs,
            (a) => a.mlp.trainStepMs,
          ),
          mlpForward: ratio(
            mlpRounds,
            (r) => r.forwardMs,
            (a) => a.mlp.forwardMs,
          ),
          cnnTrainStep: ratio(
            cnnRounds,
            (r) => r.trainStepMs,
            (a) => a.cnn.trainStepMs,
          ),
          cnnForward: ratio(
            cnnRounds,
            (r) => r.forwardMs,
            (a) => a.cnn.forwardMs,
          ),
        };
  if (ratios !== undefined) log(`ratios vs PyTorch (median of ${ran.length} rounds): ${JSON.stringify(ratios)}`);
  const [first] = ran;
  const torch =
    first === undefined
      ? anchors[0]
      : {
          torch: first.torch,
          threads: first.threads,
          blas: first.blas,
          openblas: first.openblas,
          envUnset: unset,
          env: first.env,
          mlp: { trainStepMs: medianOf(ran.map((a) => a.mlp.trainStepMs)), forwardMs: medianOf(ran.map((a) => a.mlp.forwardMs)) },
          cnn: { trainStepMs: medianOf(ran.map((a) => a.cnn.trainStepMs)), forwardMs: medianOf(ran.map((a) => a.cnn.forwardMs)) },
          rounds: ran.map((a) => ({ mlp: a.mlp, cnn: a.cnn })),
        };
  process.stdout.write(
    `${JSON.stringify({
      bench: 'train',
      backend: describeTensorBackend(),
      batch: BATCH,
      optimizer: 'adam',
      protocol: {
        warmup: WARMUP,
        minRuns: MIN_RUNS,
        minMs: MIN_MS,
        maxRuns: MAX_RUNS,
        statistic: 'median',
        rounds: ROUNDS,
        interleaved: true,
      },
      mlp: { model: '784-256-256-10', ...mlp },
      cnn: { model: '32x32x3 conv3x3x32+pool, conv3x3x64+pool, dense 10', ...cnn },
      torch,
      ratios: ratios ?? null,
      aims: { mlpTrainStep: 2.0, cnnTrainStep: 2.5 },
    })}\n`,
  );
}

await main();
