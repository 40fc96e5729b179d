/**
 * The Urabrask crucible: the hazard battery run on a compiled kernel artifact itself, at its
 * compiled site shape, with seeded inputs (reference prototype-blueprint-pipeline §6.4).
 * Probes, thresholds and where they depart from the reference: docs/architecture.md (Urabrask).
 */
import { optionChecks, quantile, systemClock, type Clock } from '../core/index.js';
import { seededRng, tf } from '../tensor/index.js';
import { decodeArtifact, loadArtifact, sha256Hex } from '../tezzeret/index.js';
import type { KarnCatalog, SeedModule } from '../karn/index.js';

/** Status of each hazard the crucible probes (names as in reference §6.4 where it has them). */
export const HazardStatus = {
  OK: 'ok',
  PRESENT: 'present',
  EXPLODE: 'explode',
  VANISH: 'vanish',
  BLOWUP: 'blowup',
  SLOW: 'slow',
  HIGH: 'high',
} as const;

/** Union of {@link HazardStatus} values. */
export type HazardStatus = (typeof HazardStatus)[keyof typeof HazardStatus];

/** The hazards map: one status per probe. */
export interface HazardMap {
  readonly nan_inf: typeof HazardStatus.OK | typeof HazardStatus.PRESENT;
  readonly grad_instability: typeof HazardStatus.OK | typeof HazardStatus.EXPLODE | typeof HazardStatus.VANISH;
  readonly output_scale: typeof HazardStatus.OK | typeof HazardStatus.BLOWUP;
  readonly latency: typeof HazardStatus.OK | typeof HazardStatus.SLOW;
  readonly memory_watermark: typeof HazardStatus.OK | typeof HazardStatus.HIGH;
}

/** What the probes measured. */
export interface HazardMeasurements {
  /** Non-finite output elements summed over every extreme input. */
  readonly nonFiniteOutputs: number;
  /** Σ of the per-variable gradient L2 norms. */
  readonly gradNorm: number;
  /** ‖f(x)‖ / ‖x‖ on the normal probe batch. */
  readonly outputScaleRatio: number;
  /** Median forward time, in milliseconds. */
  readonly latencyP50Ms: number;
  /** `tf.memory().numBytes` growth during one forward + backward pass, in bytes. */
  readonly memoryDeltaBytes: number;
  /** Bytes of the module's variables. */
  readonly parameterBytes: number;
  /** `memoryDeltaBytes / parameterBytes` (0 when the module has no parameters). */
  readonly memoryRatio: number;
}

/** The thresholds a report was classified with (so scoring can weigh how far a hazard overshot). */
export interface HazardThresholds {
  readonly gradExplode: number;
  readonly gradVanish: number;
  readonly outputScale: number;
  readonly latencyBudgetMs: number;
  readonly memoryWatermarkBytes: number;
}

/** The crucible's typed result for one artifact. */
export interface HazardReport {
  readonly blueprintId: string;
  readonly family: string;
  /** SHA-256 hex of the probed artifact bytes. */
  readonly artifactChecksum: string;
  /** Site shape the artifact was compiled for (without the batch axis). */
  readonly siteShape: readonly number[];
  readonly hazards: HazardMap;
  readonly measurements: HazardMeasurements;
  /** Thresholds the hazards were classified with. */
  readonly thresholds: HazardThresholds;
  /** Names of the hazards whose status is not `ok`, in map order. */
  readonly fired: readonly (keyof HazardMap)[];
  /** Wall time of the whole battery, in milliseconds. */
  readonly durationMs: number;
}

/** Options of {@link Crucible}. */
export interface CrucibleOptions {
  /** @default systemClock */
  readonly clock?: Clock;
  /** Catalog that rebuilds artifacts. @default Tezzeret's shared `KarnCatalog()` */
  readonly catalog?: KarnCatalog;
  /** Gradient-norm sum above which gradients explode. @default 1e3 */
  readonly gradExplodeThreshold?: number;
  /** Gradient-norm sum below which gradients vanish. @default 1e-8 */
  readonly gradVanishThreshold?: number;
  /** Output/input norm ratio above which the output blows up. @default 100 */
  readonly outputScaleThreshold?: number;
  /** Median forward time above which the module is slow, in ms. @default 250 */
  readonly latencyBudgetMs?: number;
  /** Memory growth of one forward + backward above which memory is high, in MB. @default 64 */
  readonly memoryWatermarkMb?: number;
  /** Magnitudes of the extreme inputs (each applied with both signs; zeros are always tried). @default [1e4, 1e8] */
  readonly extremeMagnitudes?: readonly number[];
  /** Batch size of every probe. @default 2 */
  readonly probeBatch?: number;
  /** Timed forward passes of the latency probe. @default 5 */
  readonly latencySamples?: number;
  /** Seed of the probe inputs. @default 0x0b5d */
  readonly seed?: number;
}

/** Defaults of {@link CrucibleOptions}, in one place. */
export const CRUCIBLE_DEFAULTS = {
  gradExplodeThreshold: 1e3,
  gradVanishThreshold: 1e-8,
  outputScaleThreshold: 100,
  latencyBudgetMs: 250,
  memoryWatermarkMb: 64,
  extremeMagnitudes: [1e4, 1e8] as readonly number[],
  probeBatch: 2,
  latencySamples: 5,
  seed: 0x0b5d,
} as const;

type ResolvedCrucibleOptions = {
  -readonly [K in keyof typeof CRUCIBLE_DEFAULTS]: (typeof CRUCIBLE_DEFAULTS)[K] extends number ? number : readonly number[];
};

const BYTES_PER_MB = 1024 * 1024;
let scopeCounter = 0;

function resolveCrucibleOptions(options: CrucibleOptions): ResolvedCrucibleOptions {
  const check = optionChecks('Crucible');
  const d = CRUCIBLE_DEFAULTS;
  const extremeMagnitudes = [...(options.extremeMagnitudes ?? d.extremeMagnitudes)];
  if (!extremeMagnitudes.every((m) => Number.isFinite(m) && m > 0)) {
    check.fail('extremeMagnitudes', 'a list of finite numbers > 0', extremeMagnitudes);
  }
  return {
    gradExplodeThreshold: check.positive('gradExplodeThreshold', options.gradExplodeThreshold ?? d.gradExplodeThreshold),
    gradVanishThreshold: check.positive('gradVanishThreshold', options.gradVanishThreshold ?? d.gradVanishThreshold),
    outputScaleThreshold: check.positive('outputScaleThreshold', options.outputScaleThreshold ?? d.outputScaleThreshold),
    latencyBudgetMs: check.positive('latencyBudgetMs', options.latencyBudgetMs ?? d.latencyBudgetMs),
    memoryWatermarkMb: check.positive('memoryWatermarkMb', options.memoryWatermarkMb ?? d.memoryWatermarkMb),
    extremeMagnitudes,
    probeBatch: check.integer('probeBatch', options.probeBatch ?? d.probeBatch, { min: 1 }),
    latencySamples: check.integer('latencySamples', options.latencySamples ?? d.latencySamples, { min: 1 }),
    seed: options.seed ?? d.seed,
  };
}

/**
 * Runs the hazard battery on kernel artifacts. Stateless between calls; every probe frees
 * the tensors it makes and the loaded module is disposed before {@link Crucible.probe}
 * returns.
 */
export class Crucible {
  readonly #clock: Clock;
  readonly #catalog: KarnCatalog | undefined;
  readonly #options: ResolvedCrucibleOptions;

  constructor(options: CrucibleOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#catalog = options.catalog;
    this.#options = resolveCrucibleOptions(options);
  }

  /**
   * Loads `artifactBytes` (throws `TEZZERET_ARTIFACT_INVALID` when they do not decode) and
   * runs every probe on the loaded module at the artifact's site shape.
   */
  probe(artifactBytes: Uint8Array): HazardReport {
    const startMs = this.#clock.monotonicMs();
    const { header } = decodeArtifact(artifactBytes);
    scopeCounter += 1;
    const scope = `urabrask-crucible-${scopeCounter}/${header.blueprintId}`;
    const module = loadArtifact(artifactBytes, this.#catalog === undefined ? { scope } : { scope, catalog: this.#catalog });
    const o = this.#options;
    const shape = [o.probeBatch, ...header.site.shape];
    // A WIDEN module returns the next layer's pre-activation shape, not its input's.
    const outputShape = [o.probeBatch, ...(header.site.outputShape ?? header.site.shape)];
    const normal = normalValues(shape, o.seed);
    const target = normalValues(outputShape, o.seed + 1);
    let measurements: HazardMeasurements;
    try {
      // Measured as it will train: what a seed draws at graft (random widening) is drawn here too.
      module.graftInit?.apply(seededRng(o.seed + 2));
      initialiseFromProbe(module, shape, normal, { shape: outputShape, values: target });
      const nonFiniteOutputs = this.#nonFiniteOutputs(module, shape, normal);
      const { gradNorm, outputScaleRatio, memoryDeltaBytes } = gradientProbe(module, shape, normal, { shape: outputShape, values: target });
      const latencyP50Ms = this.#latencyP50Ms(module, shape, normal);
      const parameterBytes = module.variables.reduce((sum, v) => sum + v.size * 4, 0);
      measurements = {
        nonFiniteOutputs,
        gradNorm,
        outputScaleRatio,
        latencyP50Ms,
        memoryDeltaBytes,
        parameterBytes,
        memoryRatio: parameterBytes === 0 ? 0 : memoryDeltaBytes / parameterBytes,
      };
    } finally {
      module.dispose();
    }
    const hazards = this.#classify(measurements);
    const fired = (Object.keys(hazards) as (keyof HazardMap)[]).filter((name) => hazards[name] !== HazardStatus.OK);
    return {
      blueprintId: header.blueprintId,
      family: header.family,
      artifactChecksum: sha256Hex(artifactBytes),
      siteShape: [...header.site.shape],
      hazards,
      measurements,
      thresholds: {
        gradExplode: o.gradExplodeThreshold,
        gradVanish: o.gradVanishThreshold,
        outputScale: o.outputScaleThreshold,
        latencyBudgetMs: o.latencyBudgetMs,
        memoryWatermarkBytes: o.memoryWatermarkMb * BYTES_PER_MB,
      },
      fired,
      durationMs: this.#clock.monotonicMs() - startMs,
    };
  }

  #classify(m: HazardMeasurements): HazardMap {
    const o = this.#options;
    // A non-finite gradient norm is an explosion, not a pass.
    const gradInstability =
      !Number.isFinite(m.gradNorm) || m.gradNorm > o.gradExplodeThreshold
        ? HazardStatus.EXPLODE
        : m.gradNorm < o.gradVanishThreshold
          ? HazardStatus.VANISH
          : HazardStatus.OK;
    return {
      nan_inf: m.nonFiniteOutputs > 0 ? HazardStatus.PRESENT : HazardStatus.OK,
      grad_instability: gradInstability,
      output_scale:
        !Number.isFinite(m.outputScaleRatio) || m.outputScaleRatio > o.outputScaleThreshold ? HazardStatus.BLOWUP : HazardStatus.OK,
      latency: m.latencyP50Ms > o.latencyBudgetMs ? HazardStatus.SLOW : HazardStatus.OK,
      memory_watermark: m.memoryDeltaBytes > o.memoryWatermarkMb * BYTES_PER_MB ? HazardStatus.HIGH : HazardStatus.OK,
    };
  }

  #nonFiniteOutputs(module: SeedModule, shape: number[], normal: Float32Array): number {
    const scales = [0, ...this.#options.extremeMagnitudes.flatMap((m) => [m, -m])];
    let count = 0;
    for (const scale of scales) {
      count += tf.tidy(() => {
        const x = tf.mul(tf.tensor(normal, shape), tf.scalar(scale));
        const y = module.apply(x);
        return tf.sum(tf.cast(tf.logicalNot(tf.isFinite(y)), 'int32')).dataSync()[0] ?? 0;
      });
    }
    return count;
  }

  #latencyP50Ms(module: SeedModule, shape: number[], normal: Float32Array): number {
    const x = tf.tensor(normal, shape);
    const samples: number[] = [];
    try {
      // One untimed pass so kernel set-up is not counted.
      tf.tidy(() => module.apply(x).dataSync());
      for (let i = 0; i < this.#options.latencySamples; i += 1) {
        const t0 = this.#clock.monotonicMs();
        // dataSync waits for the backend, so the sample covers the whole pass.
        tf.tidy(() => module.apply(x).dataSync());
        samples.push(this.#clock.monotonicMs() - t0);
      }
    } finally {
      x.dispose();
    }
    return quantile(samples, 0.5) ?? 0;
  }
}

/** A fixed standard-normal batch of `shape`. */
function normalValues(shape: readonly number[], seed: number): Float32Array {
  const rng = seededRng(seed);
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i += 1) values[i] = rng.nextNormal();
  return values;
}

/**
 * One forward + backward pass of `mean((f(x) − y)²)`: gradient-norm sum over the module's
 * variables, output/input norm ratio, and the memory growth — the larger of the bytes held
 * just after the forward pass inside the gradient tape (tensors saved for backward are
 * alive then) and the bytes held once the gradients exist.
 */
/**
 * A module that initialises from the host's gradient (GradMax widening: incoming and
 * outgoing weights 0 until then, so every gradient would vanish) is measured as it will
 * train: first initialised from the probe batch's own gradient matrix `M = xᵀ·G`, `G` the
 * gradient of the probe's MSE loss with respect to the module's (zero) output.
 */
function initialiseFromProbe(
  module: SeedModule,
  shape: number[],
  normal: Float32Array,
  target: { readonly shape: number[]; readonly values: Float32Array },
): void {
  const init = module.gradientInit;
  if (init?.pending() !== true) return;
  const m = tf.tidy(() => {
    const batch = shape[0] as number;
    const x = tf.reshape(tf.tensor(normal, shape), [batch, -1]);
    const y = tf.tensor(target.values, target.shape);
    const output = module.apply(tf.tensor(normal, shape));
    // ∂ mean((out − y)²) / ∂out = 2·(out − y) / size.
    const g = tf.reshape(tf.div(tf.mul(tf.scalar(2), tf.sub(output, y)), y.size), [batch, -1]);
    return tf.matMul(x as tf.Tensor2D, g as tf.Tensor2D, true, false);
  });
  try {
    const [rows, cols] = m.shape as [number, number];
    init.apply(m.dataSync() as Float32Array, rows, cols);
  } finally {
    m.dispose();
  }
}

function gradientProbe(
  module: SeedModule,
  shape: number[],
  normal: Float32Array,
  target: { readonly shape: number[]; readonly values: Float32Array },
): { gradNorm: number; outputScaleRatio: number; memoryDeltaBytes: number } {
  const bytesBefore = tf.memory().numBytes;
  return tf.tidy(() => {
    const x = tf.tensor(normal, shape);
    const y = tf.tensor(target.values, target.shape);
    let peakBytes = tf.memory().numBytes;
    let outputNorm = 0;
    let gradNorm = 0;
    const loss = (): tf.Scalar => {
      const output = module.apply(x);
      peakBytes = Math.max(peakBytes, tf.memory().numBytes);
      outputNorm = tf.norm(output).dataSync()[0] ?? 0;
      return tf.mean(tf.square(tf.sub(output, y)));
    };
    if (module.variables.length > 0) {
      const { value, grads } = tf.variableGrads(loss, [...module.variables]);
      peakBytes = Math.max(peakBytes, tf.memory().numBytes);
      value.dataSync();
      for (const grad of Object.values(grads)) gradNorm += tf.norm(grad).dataSync()[0] ?? 0;
    } else {
      loss();
    }
    const inputNorm = tf.norm(x).dataSync()[0] ?? 0;
    return {
      gradNorm,
      outputScaleRatio: inputNorm === 0 ? 0 : outputNorm / inputNorm,
      memoryDeltaBytes: Math.max(0, peakBytes - bytesBefore),
    };
  });
}
