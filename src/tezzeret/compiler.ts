/**
 * The Tezzeret compiler: blueprint → kernel artifact (`artifact.ts`) → loaded seed module,
 * rebuilt through the blueprint's own Karn family (reference prototype-blueprint-pipeline
 * §2.2–§2.4, §10.1–§10.3; departures in docs/architecture.md, Tezzeret).
 */
import { ErrorCode, EsperError, isEsperError, optionChecks, quantile, systemClock, type Clock } from '../core/index.js';
import { siteOutputShape, type BlueprintDescriptor, type SeedSiteDescriptor } from '../leyline/index.js';
import { decodeWeights, decodeWeightsFromBytes, encodeWeights, encodeWeightsToBytes, seededRng, tf } from '../tensor/index.js';
import { KarnCatalog, type BlueprintParameters, type FamilyId, type SeedModule } from '../karn/index.js';
import {
  artifactInvalid,
  decodeArtifact,
  encodeArtifact,
  guardDigest,
  sha256Hex,
  type ArtifactHeader,
  type ArtifactVariable,
  type GuardSpec,
} from './artifact.js';
import { artifactSiteOf, siteOfArtifact, type ArtifactSite } from './artifact-site.js';
import { TezzeretMetric } from './names.js';

/** Options of {@link TezzeretCompiler}. */
export interface TezzeretCompilerOptions {
  /** Blueprint catalog that builds modules. @default a new `KarnCatalog()` (BP001–BP056) */
  readonly catalog?: KarnCatalog;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Timed forward passes of the loaded artifact. @default 5 */
  readonly prewarmSamples?: number;
  /** Batch size of the prewarm passes. @default 2 */
  readonly prewarmBatch?: number;
}

/** Per-call options of {@link TezzeretCompiler.compile}. */
export interface CompileOptions {
  /** Seed of the weight initialisation (same seed → same weights → same bytes but `compiledAt`). */
  readonly seed: number;
}

/** Prewarm timings of the loaded artifact. */
export interface PrewarmTimings {
  /** Median of the samples (core quantile: linear interpolation), in milliseconds. */
  readonly p50Ms: number;
  /** 0.95-quantile of the samples (linear interpolation), in milliseconds. */
  readonly p95Ms: number;
  /** Each pass's duration, in milliseconds, in run order. */
  readonly samples: readonly number[];
}

/** A compiled kernel artifact. */
export interface CompiledArtifact {
  /** The artifact bytes (format in `artifact.ts`). */
  readonly bytes: Uint8Array;
  /** SHA-256 hex of `bytes`. */
  readonly checksum: string;
  /** SHA-256 hex of the canonical JSON of `header.guard`. */
  readonly guardDigest: string;
  readonly header: ArtifactHeader;
  /** Build + trace + serialise time, in milliseconds. */
  readonly compileMs: number;
  readonly prewarm: PrewarmTimings;
}

/** Options of {@link loadArtifact}. */
export interface LoadArtifactOptions {
  /**
   * Variable name prefix of the rebuilt module; two live modules need distinct scopes.
   * @default the blueprint id
   */
  readonly scope?: string;
  /** @default a shared `KarnCatalog()` */
  readonly catalog?: KarnCatalog;
}

const COMPILER_DEFAULTS = { prewarmSamples: 5, prewarmBatch: 2 } as const;

let sharedCatalog: KarnCatalog | undefined;
let scopeCounter = 0;

function defaultCatalog(): KarnCatalog {
  sharedCatalog ??= new KarnCatalog();
  return sharedCatalog;
}

/** A scope no other live module uses (tfjs refuses duplicate variable names). */
function privateScope(purpose: string, blueprintId: string): string {
  scopeCounter += 1;
  return `tezzeret-${purpose}-${scopeCounter}/${blueprintId}`;
}

/**
 * The p50 and p95 of prewarm `samples` (ms, in run order) by core's quantile, the
 * definition of reference §4.8; 0 with no samples.
 */
export function prewarmTimings(samples: readonly number[]): PrewarmTimings {
  return { p50Ms: quantile(samples, 0.5) ?? 0, p95Ms: quantile(samples, 0.95) ?? 0, samples };
}

function relativeName(variable: tf.Variable, scope: string): string {
  const prefix = `${scope}/`;
  if (!variable.name.startsWith(prefix)) {
    throw new EsperError(ErrorCode.INVALID_STATE, `variable '${variable.name}' is outside scope '${scope}'`, { details: { scope } });
  }
  return variable.name.slice(prefix.length);
}

function artifactSite(site: SeedSiteDescriptor): ArtifactSite {
  return artifactSiteOf(site) ?? optionChecks('TezzeretCompiler.compile').fail('site.kind', 'a declared SeedSiteKind', site.kind);
}

/**
 * Rebuilds a seed module from artifact bytes: verifies the format (magic, version, lengths,
 * CRC-32C, header schema), rebuilds the module through Karn's family builder from the
 * header, checks the rebuilt variables against the header and the stored weights, then
 * assigns the stored weights. Throws `TEZZERET_ARTIFACT_INVALID` (with the Karn or tensor
 * error as `cause` when one was the reason). The caller owns the module and disposes it.
 *
 * Weights are assigned by scope-relative name rather than through `restoreVariables`,
 * which matches absolute names: this is what lets an artifact load under any scope.
 */
export function loadArtifact(bytes: Uint8Array, options: LoadArtifactOptions = {}): SeedModule {
  const { header, weights } = decodeArtifact(bytes);
  const catalog = options.catalog ?? defaultCatalog();
  const scope = options.scope ?? header.blueprintId;
  let encoded;
  try {
    encoded = decodeWeightsFromBytes(weights);
  } catch (error) {
    throw artifactInvalid(`artifact weights are invalid`, { blueprintId: header.blueprintId }, error);
  }
  let module: SeedModule;
  try {
    const family = catalog.familyOf(header.blueprintId).id;
    if (family !== header.family) {
      throw artifactInvalid(`artifact says family ${header.family}, catalog builds ${header.blueprintId} as ${family}`, {
        blueprintId: header.blueprintId,
      });
    }
    const site = siteOfArtifact(header.site, `artifact:${header.blueprintId}`);
    module = catalog.build(header.blueprintId, site, { seed: header.seed, parameters: header.parameters, scope });
  } catch (error) {
    if (isEsperError(error, ErrorCode.TEZZERET_ARTIFACT_INVALID)) throw error;
    throw artifactInvalid(`artifact for ${header.blueprintId} cannot be rebuilt`, { blueprintId: header.blueprintId }, error);
  }
  try {
    const problems: string[] = [];
    const rebuilt = module.variables.map((v) => ({ name: relativeName(v, scope), shape: v.shape, dtype: v.dtype }));
    const describe = (v: { name: string; shape: readonly number[]; dtype: string }): string => `${v.name}:${v.dtype}[${v.shape.join(',')}]`;
    const same = (list: readonly { name: string; shape: readonly number[]; dtype: string }[]): boolean =>
      list.length === header.variables.length && list.every((v, i) => describe(v) === describe(header.variables[i] as ArtifactVariable));
    if (!same(rebuilt)) problems.push(`rebuilt variables [${rebuilt.map(describe).join(' ')}] differ from the header`);
    if (!same(encoded.specs)) problems.push(`stored weights [${encoded.specs.map(describe).join(' ')}] differ from the header`);
    if (problems.length > 0)
      throw artifactInvalid(`artifact for ${header.blueprintId}: ${problems.join('; ')}`, { blueprintId: header.blueprintId });
    const tensors = decodeWeights(encoded);
    try {
      module.variables.forEach((v, i) => v.assign(tensors[(header.variables[i] as ArtifactVariable).name] as tf.Tensor));
    } finally {
      tf.dispose(Object.values(tensors));
    }
    return module;
  } catch (error) {
    module.dispose();
    if (isEsperError(error, ErrorCode.TEZZERET_ARTIFACT_INVALID)) throw error;
    throw artifactInvalid(`artifact weights for ${header.blueprintId} cannot be loaded`, { blueprintId: header.blueprintId }, error);
  }
}

/**
 * Compiles blueprints into kernel artifacts and measures them. Keeps the compiler metrics
 * of reference §2.4 that apply without a forge (see {@link TezzeretMetric}).
 */
export class TezzeretCompiler {
  readonly #catalog: KarnCatalog;
  readonly #clock: Clock;
  readonly #prewarmSamples: number;
  readonly #prewarmBatch: number;
  readonly #metrics = new Map<TezzeretMetric, number>();

  constructor(options: TezzeretCompilerOptions = {}) {
    this.#catalog = options.catalog ?? defaultCatalog();
    this.#clock = options.clock ?? systemClock;
    const check = optionChecks('TezzeretCompiler');
    this.#prewarmSamples = check.integer('prewarmSamples', options.prewarmSamples ?? COMPILER_DEFAULTS.prewarmSamples, { min: 1 });
    this.#prewarmBatch = check.integer('prewarmBatch', options.prewarmBatch ?? COMPILER_DEFAULTS.prewarmBatch, { min: 1 });
    for (const name of Object.values(TezzeretMetric)) this.#metrics.set(name, 0);
  }

  /** The catalog this compiler builds with (pass it to {@link loadArtifact} for custom catalogs). */
  get catalog(): KarnCatalog {
    return this.#catalog;
  }

  /**
   * Compiles `descriptor` with `parameters` for `site`: validates the parameters with Karn,
   * builds the module, traces one batch-1 forward pass for the guard spec, serialises the
   * artifact, then loads it back and times {@link TezzeretCompilerOptions.prewarmSamples}
   * forward passes. Throws Karn's typed errors (`KARN_BLUEPRINT_NOT_FOUND`,
   * `KARN_PARAMETER_INVALID`, `KARN_SITE_UNSUPPORTED`) or `INVALID_ARGUMENT` when the
   * descriptor's family disagrees with the catalog. Leaves no tensors behind.
   */
  async compile(
    descriptor: BlueprintDescriptor,
    parameters: BlueprintParameters,
    site: SeedSiteDescriptor,
    options: CompileOptions,
  ): Promise<CompiledArtifact> {
    try {
      const result = await this.#compile(descriptor, parameters, site, options);
      this.#bump(TezzeretMetric.COMPILATION_TOTAL);
      this.#metrics.set(TezzeretMetric.LAST_COMPILE_MS, result.compileMs);
      this.#metrics.set(TezzeretMetric.LAST_PREWARM_MS, result.prewarm.p50Ms);
      return result;
    } catch (error) {
      this.#bump(TezzeretMetric.COMPILATION_TOTAL);
      this.#bump(TezzeretMetric.COMPILATION_FAILED);
      throw error;
    }
  }

  /** A copy of the metrics (names in {@link TezzeretMetric}). */
  metricsSnapshot(): Record<string, number> {
    return Object.fromEntries(this.#metrics);
  }

  async #compile(
    descriptor: BlueprintDescriptor,
    parameters: BlueprintParameters,
    site: SeedSiteDescriptor,
    options: CompileOptions,
  ): Promise<CompiledArtifact> {
    const id = descriptor.blueprintId;
    const family: FamilyId = this.#catalog.familyOf(id).id;
    if (descriptor.family !== family) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `descriptor ${id} names family '${descriptor.family}', catalog has '${family}'`, {
        details: { blueprintId: id, field: 'family' },
      });
    }
    const validated = this.#catalog.validateParameters(id, parameters);
    const headerSite = artifactSite(site);
    const startMs = this.#clock.monotonicMs();
    const scope = privateScope('compile', id);
    const module = this.#catalog.build(id, site, { seed: options.seed, parameters: validated, scope });
    let bytes: Uint8Array;
    let header: ArtifactHeader;
    try {
      const inputShape = [1, ...site.shape];
      const output = tf.tidy(() => module.apply(tf.zeros(inputShape)));
      const guard: GuardSpec = { inputShape, outputShape: [...output.shape], dtype: 'float32' };
      const outputDtype = output.dtype;
      output.dispose();
      const expectedShape = [1, ...siteOutputShape(site)];
      if (guard.outputShape.length !== expectedShape.length || guard.outputShape.some((d, i) => d !== expectedShape[i])) {
        throw new EsperError(
          ErrorCode.INVALID_STATE,
          `blueprint ${id} returned [${guard.outputShape.join(', ')}] for the site's [${expectedShape.join(', ')}]`,
          { details: { blueprintId: id } },
        );
      }
      if (outputDtype !== 'float32') {
        throw new EsperError(ErrorCode.INVALID_STATE, `blueprint ${id} produced ${outputDtype} output`, { details: { blueprintId: id } });
      }
      const named = module.variables.map((v) => ({ name: relativeName(v, scope), tensor: v as tf.Tensor }));
      const weights = encodeWeightsToBytes(await encodeWeights(named));
      header = {
        blueprintId: id,
        family,
        parameters: validated,
        site: headerSite,
        guard,
        variables: module.variables.map((v, i) => ({
          name: (named[i] as { name: string }).name,
          shape: [...v.shape],
          dtype: v.dtype as ArtifactVariable['dtype'],
        })),
        seed: options.seed,
        compiledAt: new Date(this.#clock.wallMs()).toISOString(),
      };
      bytes = encodeArtifact(header, weights);
    } finally {
      module.dispose();
    }
    const compileMs = this.#clock.monotonicMs() - startMs;
    const prewarm = this.#prewarm(bytes, id, site);
    return { bytes, checksum: sha256Hex(bytes), guardDigest: guardDigest(header.guard), header, compileMs, prewarm };
  }

  /** Loads the artifact just written and times forward passes on a fixed random batch. */
  #prewarm(bytes: Uint8Array, id: string, site: SeedSiteDescriptor): PrewarmTimings {
    const loaded = loadArtifact(bytes, { scope: privateScope('prewarm', id), catalog: this.#catalog });
    const shape = [this.#prewarmBatch, ...site.shape];
    const rng = seededRng(0x7e22);
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i += 1) values[i] = rng.nextNormal();
    const x = tf.tensor(values, shape);
    const samples: number[] = [];
    try {
      for (let i = 0; i < this.#prewarmSamples; i += 1) {
        const t0 = this.#clock.monotonicMs();
        const y = loaded.apply(x);
        // dataSync waits for the backend, so the sample covers the whole pass.
        y.dataSync();
        y.dispose();
        samples.push(this.#clock.monotonicMs() - t0);
      }
    } finally {
      x.dispose();
      loaded.dispose();
    }
    return prewarmTimings(samples);
  }

  #bump(metric: TezzeretMetric): void {
    this.#metrics.set(metric, (this.#metrics.get(metric) ?? 0) + 1);
  }
}
