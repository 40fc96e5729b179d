/**
 * Urabrask benchmarks (reference prototype-blueprint-pipeline §6.9): p50 / p95 forward
 * latency and throughput of the artifact itself at its compiled site shape, per batch-size
 * profile, as a `BlueprintBenchmark` announced as `BenchmarkReport`. Unlike the prototype
 * there is no synthetic fallback (a failure throws), percentiles interpolate linearly, and
 * `device` / `runtime_version` name the tfjs backend and version.
 */
import { create } from '@bufbuild/protobuf';
import { optionChecks, quantileOfSorted, systemClock, type Clock } from '../core/index.js';
import {
  BenchmarkReportSchema,
  BlueprintBenchmarkProfileSchema,
  BlueprintBenchmarkSchema,
  type BlueprintBenchmark,
  type BlueprintBenchmarkProfile,
} from '../leyline/index.js';
import type { Bus, PublishReceipt } from '../oona/index.js';
import { describeTensorBackend, seededRng, tf } from '../tensor/index.js';
import { decodeArtifact, loadArtifact } from '../tezzeret/index.js';
import type { KarnCatalog } from '../karn/index.js';

/** Version written to `BlueprintBenchmark.version` (reference: 1). */
export const BLUEPRINT_BENCHMARK_VERSION = 1;

/** One benchmark profile: a named batch size. */
export interface BenchmarkProfileSpec {
  readonly name: string;
  /** Rows per forward pass. */
  readonly batch: number;
}

/** Options of {@link benchmarkArtifact}. */
export interface BenchmarkOptions {
  /** Profiles to time, reported in this order. @default BENCHMARK_DEFAULTS.profiles */
  readonly profiles?: readonly BenchmarkProfileSpec[];
  /** Timed forward passes per profile. @default 10 */
  readonly samples?: number;
  /** Untimed forward passes per profile before timing. @default 2 */
  readonly warmup?: number;
  /** Seed of the input batch. @default 0x0b5e */
  readonly seed?: number;
  /** Catalog that rebuilds the artifact. @default Tezzeret's shared `KarnCatalog()` */
  readonly catalog?: KarnCatalog;
  /** Clock the passes are timed with. @default systemClock */
  readonly clock?: Clock;
}

/** Defaults of {@link BenchmarkOptions}, in one place. */
export const BENCHMARK_DEFAULTS = {
  profiles: [
    { name: 'batch_1', batch: 1 },
    { name: 'batch_16', batch: 16 },
    { name: 'batch_64', batch: 64 },
  ] as readonly BenchmarkProfileSpec[],
  samples: 10,
  warmup: 2,
  seed: 0x0b5e,
} as const;

let scopeCounter = 0;

/**
 * Loads `artifactBytes` under a private variable scope and, per profile, runs `warmup`
 * untimed then `samples` timed forward passes on a seeded normal batch of
 * `[batch, ...siteShape]`. Each sample waits for the output data (`dataSync`), so it covers
 * the whole pass. Throughput is `batch / p50` in samples per second (0 when p50 is 0); all
 * three figures are rounded to float32, as the wire carries them. Every
 * tensor made, and the loaded module, is disposed before returning.
 * @throws EsperError `INVALID_ARGUMENT` for no profiles, duplicate or empty profile names, or
 *   non-integer / non-positive batch, samples or negative warmup;
 *   `TEZZERET_ARTIFACT_INVALID` when the bytes do not decode.
 */
export function benchmarkArtifact(artifactBytes: Uint8Array, options: BenchmarkOptions = {}): BlueprintBenchmark {
  const profiles = options.profiles ?? BENCHMARK_DEFAULTS.profiles;
  const samples = options.samples ?? BENCHMARK_DEFAULTS.samples;
  const warmup = options.warmup ?? BENCHMARK_DEFAULTS.warmup;
  const seed = options.seed ?? BENCHMARK_DEFAULTS.seed;
  const clock = options.clock ?? systemClock;
  validate(profiles, samples, warmup);

  const { header } = decodeArtifact(artifactBytes);
  scopeCounter += 1;
  const scope = `urabrask-benchmark-${scopeCounter}/${header.blueprintId}`;
  const module = loadArtifact(artifactBytes, options.catalog === undefined ? { scope } : { scope, catalog: options.catalog });
  const measured: BlueprintBenchmarkProfile[] = [];
  try {
    for (const profile of profiles) {
      const shape = [profile.batch, ...header.site.shape];
      const x = tf.tensor(normalValues(shape, seed), shape);
      const timesMs: number[] = [];
      try {
        for (let i = 0; i < warmup; i += 1) tf.tidy(() => module.apply(x).dataSync());
        for (let i = 0; i < samples; i += 1) {
          const t0 = clock.monotonicMs();
          tf.tidy(() => module.apply(x).dataSync());
          timesMs.push(clock.monotonicMs() - t0);
        }
      } finally {
        x.dispose();
      }
      const sorted = Float64Array.from(timesMs).sort();
      const p50 = quantileOfSorted(sorted, 0.5) ?? 0;
      measured.push(
        create(BlueprintBenchmarkProfileSchema, {
          name: profile.name,
          // The fields are float32 on the wire: round here so the message equals its decoded copy.
          p50LatencyMs: Math.fround(p50),
          p95LatencyMs: Math.fround(quantileOfSorted(sorted, 0.95) ?? 0),
          throughputSamplesPerS: Math.fround(p50 > 0 ? profile.batch / (p50 / 1000) : 0),
        }),
      );
    }
  } finally {
    module.dispose();
  }
  const backend = describeTensorBackend();
  return create(BlueprintBenchmarkSchema, {
    version: BLUEPRINT_BENCHMARK_VERSION,
    blueprintId: header.blueprintId,
    profiles: measured,
    device: `cpu-${backend.backend}${backend.simd ? '-simd' : ''}`,
    runtimeVersion: backend.tfjsVersion,
  });
}

/** Publishes `BenchmarkReport { benchmark }` on `bus`; errors from the bus propagate. */
export function publishBenchmark(bus: Bus, benchmark: BlueprintBenchmark): Promise<PublishReceipt> {
  return bus.publish(create(BenchmarkReportSchema, { benchmark }));
}

function validate(profiles: readonly BenchmarkProfileSpec[], samples: number, warmup: number): void {
  const check = optionChecks('benchmarkArtifact');
  if (profiles.length === 0) check.fail('profiles', 'a non-empty list', profiles);
  const names = new Set<string>();
  for (const [i, profile] of profiles.entries()) {
    if (profile.name === '' || names.has(profile.name)) check.fail(`profiles[${i}].name`, 'a non-empty, unique name', profile.name);
    names.add(profile.name);
    check.integer(`profiles[${i}].batch`, profile.batch, { min: 1 });
  }
  check.integer('samples', samples, { min: 1 });
  check.integer('warmup', warmup, { min: 0 });
}

/** A fixed standard-normal batch of `shape`. */
function normalValues(shape: readonly number[], seed: number): Float32Array {
  const rng = seededRng(seed);
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i += 1) values[i] = rng.nextNormal();
  return values;
}
