/**
 * EWMA z-score normaliser of graph features (reference prototype-tamiyo-simic §4): one
 * running (mean, var) pair per feature key, updated then scored on every observation, and
 * persisted atomically as `{ key: { mean, var } }` JSON. Absent features are scored 0
 * without touching the stats; non-finite inputs count as absent. Departures from the
 * prototype: docs/architecture.md (Tamiyo).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ErrorCode, optionChecks, parsePersisted, parsePersistedJson } from '../core/index.js';

/** Running statistics of one key. */
export interface NormaliserStats {
  readonly mean: number;
  readonly var: number;
}

/** A prior written as (mean, std); var = std². */
export interface NormaliserPrior {
  readonly mean: number;
  readonly std: number;
}

/** Priors per feature key (reference §4 table; log-unit fixes and new keys noted). */
export const NORMALISER_PRIORS: Readonly<Record<string, NormaliserPrior>> = Object.freeze({
  loss: { mean: 0.8, std: 0.3 },
  validation_loss: { mean: 0.8, std: 0.3 },
  training_loss: { mean: 0.8, std: 0.3 },
  gradient_norm: { mean: 1.0, std: 0.5 },
  samples_per_s: { mean: 4500, std: 500 },
  hook_latency_ms: { mean: 12, std: 6 },
  seed_learning_rate: { mean: 0.01, std: 0.005 },
  seed_risk: { mean: 0.4, std: 0.2 },
  seed_age: { mean: 10, std: 4 },
  epoch_progress: { mean: 0.5, std: 0.25 },
  global_epoch: { mean: 10, std: 5 },
  // Log units: fed ln(1 + step); the prototype's 100/40 was in raw steps.
  global_step: { mean: Math.log1p(100), std: 2.0 },
  layer_latency_ms: { mean: 6.0, std: 2.0 },
  // Log units: fed ln(1 + count); the prototype's 1024/512 was in raw counts.
  layer_parameter_count: { mean: Math.log1p(1024), std: 2.0 },
  layer_weight_norm: { mean: 1.0, std: 0.4 },
  layer_gradient_norm: { mean: 0.8, std: 0.4 },
  activation_saturation: { mean: 0.5, std: 0.2 },
  activation_gradient_flow: { mean: 0.8, std: 0.2 },
  // Log units: fed ln(1 + cost); the prototype's 128/64 was in raw units.
  activation_cost: { mean: Math.log1p(128), std: 1.0 },
  activation_nonlinearity: { mean: 0.5, std: 0.2 },
  parameter_min: { mean: 0.0, std: 0.5 },
  parameter_max: { mean: 1.0, std: 0.5 },
  parameter_span: { mean: 0.5, std: 0.4 },
  parameter_default: { mean: 0.5, std: 0.4 },
  blueprint_param_log: { mean: Math.log1p(2048), std: 1.0 },
  blueprint_candidate_score: { mean: 0.5, std: 0.25 },
  // New keys (not in the prototype).
  seed_gradient_norm: { mean: 1.0, std: 0.5 },
  /** Counterfactual contribution: an accuracy delta, typically a few hundredths. */
  seed_contribution: { mean: 0.0, std: 0.05 },
});

/** Options of {@link FeatureNormaliser}. */
export interface FeatureNormaliserOptions {
  /** EWMA weight of a new observation, in (0, 1]. @default 0.1 */
  readonly alpha?: number;
  /** Smallest variance kept. @default 1e-6 */
  readonly varFloor?: number;
  /** Priors per key. @default NORMALISER_PRIORS */
  readonly priors?: Readonly<Record<string, NormaliserPrior>>;
}

/** Defaults of {@link FeatureNormaliserOptions}. */
export const FEATURE_NORMALISER_DEFAULTS = { alpha: 0.1, varFloor: 1e-6 } as const;

/** Inputs are clamped to this magnitude so δ² and the variance stay finite. */
const INPUT_LIMIT = 1e9;

interface MutableStats {
  mean: number;
  var: number;
}

/** EWMA z-score normaliser; see the module comment for departures from the prototype. */
export class FeatureNormaliser {
  readonly #alpha: number;
  readonly #varFloor: number;
  readonly #stats = new Map<string, MutableStats>();
  #dirty = false;

  constructor(options: FeatureNormaliserOptions = {}) {
    const check = optionChecks('FeatureNormaliserOptions');
    const alpha = check.number('alpha', options.alpha ?? FEATURE_NORMALISER_DEFAULTS.alpha, { greaterThan: 0, max: 1 });
    const varFloor = check.positive('varFloor', options.varFloor ?? FEATURE_NORMALISER_DEFAULTS.varFloor);
    this.#alpha = alpha;
    this.#varFloor = varFloor;
    for (const [key, prior] of Object.entries(options.priors ?? NORMALISER_PRIORS)) {
      this.#stats.set(key, { mean: prior.mean, var: Math.max(varFloor, prior.std * prior.std) });
    }
  }

  /**
   * Updates `key`'s running stats with `x`, then returns its z-score (reference §4:
   * update-then-score; an unknown key starts at mean = x, var = 1, so it scores 0).
   * A non-finite `x` is treated as {@link absent}.
   */
  normalise(key: string, x: number): number {
    if (!Number.isFinite(x)) return this.absent(key);
    const value = Math.max(-INPUT_LIMIT, Math.min(INPUT_LIMIT, x));
    let stats = this.#stats.get(key);
    if (stats === undefined) {
      stats = { mean: value, var: 1.0 };
      this.#stats.set(key, stats);
    }
    const delta = value - stats.mean;
    stats.mean += this.#alpha * delta;
    stats.var = Math.max(this.#varFloor, (1 - this.#alpha) * (stats.var + this.#alpha * delta * delta));
    this.#dirty = true;
    const std = Math.sqrt(stats.var);
    return std <= 1e-6 ? value - stats.mean : (value - stats.mean) / std;
  }

  /**
   * The value of an absent feature: 0 (the running mean), leaving the stats untouched.
   * Departure from the prototype, which normalised 0 and updated (§4 ⚠).
   */
  absent(key: string): number {
    void key;
    return 0;
  }

  /** Current stats of `key`, if known. */
  stats(key: string): NormaliserStats | undefined {
    const stats = this.#stats.get(key);
    return stats === undefined ? undefined : { mean: stats.mean, var: stats.var };
  }

  /** Whether any stats changed since construction or the last {@link save}. */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** Every key's stats, keys sorted: `{ key: { mean, var } }`. */
  toJSON(): Record<string, NormaliserStats> {
    const out: Record<string, NormaliserStats> = {};
    for (const key of [...this.#stats.keys()].sort()) {
      const stats = this.#stats.get(key) as MutableStats;
      out[key] = { mean: stats.mean, var: stats.var };
    }
    return out;
  }

  /**
   * Builds a normaliser from priors overlaid with `value` (`{ key: { mean, var | std } }`,
   * the prototype's format).
   * @param source Where `value` was read from, named in errors. @default 'value'
   * @throws EsperError TAMIYO_GRAPH_INVALID naming the source and the bad key.
   */
  static fromJSON(value: unknown, options: FeatureNormaliserOptions = {}, source = 'value'): FeatureNormaliser {
    const stats = parsePersisted(StatsFileSchema, value, {
      what: `normaliser stats ${source}`,
      details: { path: source },
      code: ErrorCode.TAMIYO_GRAPH_INVALID,
    });
    return FeatureNormaliser.#fromStats(stats, options);
  }

  static #fromStats(stats: z.output<typeof StatsFileSchema>, options: FeatureNormaliserOptions): FeatureNormaliser {
    const normaliser = new FeatureNormaliser(options);
    for (const [key, entry] of Object.entries(stats)) {
      const variance = entry.var ?? (entry.std as number) ** 2;
      normaliser.#stats.set(key, { mean: entry.mean, var: Math.max(normaliser.#varFloor, variance) });
    }
    return normaliser;
  }

  /**
   * Writes {@link toJSON} to `filePath` atomically (temp file in the same directory, then
   * rename), creating the directory. Clears {@link dirty}.
   */
  async save(filePath: string): Promise<void> {
    const wasDirty = this.#dirty;
    this.#dirty = false;
    try {
      await writeAtomic(filePath, `${JSON.stringify(this.toJSON(), null, 2)}\n`);
    } catch (error) {
      this.#dirty = wasDirty || this.#dirty;
      throw error;
    }
  }

  /**
   * Loads stats saved by {@link save}; a missing file gives a normaliser at its priors.
   * @throws EsperError TAMIYO_GRAPH_INVALID naming the file when it is not valid stats JSON.
   */
  static async load(filePath: string, options: FeatureNormaliserOptions = {}): Promise<FeatureNormaliser> {
    let text: string;
    try {
      text = await readFile(filePath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new FeatureNormaliser(options);
      throw error;
    }
    const stats = parsePersistedJson(StatsFileSchema, text, {
      what: `normaliser stats file ${filePath}`,
      details: { path: filePath },
      code: ErrorCode.TAMIYO_GRAPH_INVALID,
    });
    return FeatureNormaliser.#fromStats(stats, options);
  }
}

const finite = z.number().finite();

/** One key's stats on disk: a mean and a variance (or the prototype's std). */
const StatsEntrySchema = z
  .object({ mean: finite, var: finite.min(0).optional(), std: finite.optional() })
  .refine((entry) => entry.var !== undefined || (entry.std !== undefined && Number.isFinite(entry.std ** 2)), {
    message: 'needs a finite non-negative var (or a finite std)',
  });

const StatsFileSchema = z.record(z.string(), StatsEntrySchema);

/** Writes `text` to `filePath` through a temp file in the same directory and a rename. */
async function writeAtomic(filePath: string, text: string): Promise<void> {
  await mkdir(path.dirname(filePath), { recursive: true });
  const temp = `${filePath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, text, 'utf8');
    await rename(temp, filePath);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
