/**
 * The seed slot: what Kasmina attaches at a host seed site. It owns one grafted
 * {@link SeedModule}, feeds it the site's activation behind a stop-gradient, and blends its
 * delta into the host according to the executor-set phase, alpha and {@link BlendPlan}. At
 * a WIDEN site it is the host's `WidenSiteHook` instead: `contribute(u)` returns the seed
 * units' blended contribution to the next layer's pre-activation.
 * Replaces the prototype's manager-level `blend(host, seed, seed_id)` (reference
 * prototype-kasmina §10.2), which defaulted an unknown seed to alpha 1.
 */
import { ErrorCode, EsperError, isEsperError, optionChecks, ServiceState } from '../core/index.js';
import { BlendMode, isWidenSite, siteOutputShape, type SeedSiteDescriptor } from '../leyline/index.js';
import type { SeedModule } from '../karn/index.js';
import { stopGradient, tf, type Rng } from '../tensor/index.js';
import type { SeedSiteHook, WidenSiteHook } from '../tolaria/index.js';
import { blendActivation, blendContribution, effectiveAlphas, type BlendPlan } from './blending.js';

/**
 * Phase of a slot: TRAINING is `isolated`, BLENDING to PROBATIONARY `blended`, FOSSILIZED
 * `fused` (the seed is part of the host: its input is no longer behind a stop-gradient and
 * its delta is added `x + a·s`, so the layers before the site train through it again), a
 * paused seed `paused`.
 */
export type SeedSlotPhase = 'isolated' | 'blended' | 'fused' | 'paused';

const PHASES: readonly SeedSlotPhase[] = ['isolated', 'blended', 'fused', 'paused'];
const check = optionChecks('SeedSlot');

/** Batch size of {@link SeedSlot.probe} (the graft's shape check uses 1). */
export const PROBE_BATCH = 4;

/** What the seed module returned for a probe batch (see {@link SeedSlot.probe}). */
export interface ModuleProbe {
  /** Shape of the probe batch: `[batch, ...site.shape]`. */
  readonly inputShape: readonly number[];
  /** Shape the module must return: `[batch, ...siteOutputShape(site)]`. */
  readonly expectedShape: readonly number[];
  /** Shape of the module's output; `[]` when the module threw. */
  readonly outputShape: readonly number[];
  /** Every output value is finite (false when the module threw). */
  readonly finite: boolean;
  /** Largest absolute output value (NaN when the module threw or an output is not finite). */
  readonly maxAbs: number;
}

/** Options of {@link SeedSlot}. */
export interface SeedSlotOptions {
  readonly seedId: string;
  readonly siteId: string;
  /** The site the module is grafted at (its `shape` excludes the batch axis). */
  readonly site: SeedSiteDescriptor;
  /** The module; the slot owns it from construction on and disposes it. */
  readonly module: SeedModule;
  readonly plan: BlendPlan;
  /**
   * Starting phase.
   * @default 'isolated'
   */
  readonly phase?: SeedSlotPhase;
  /**
   * Starting alpha in [0, 1].
   * @default 0
   */
  readonly alpha?: number;
}

/**
 * A grafted seed at one host site; implements Tolaria's {@link SeedSiteHook} (`apply`, at
 * DENSE and CONV sites) and {@link WidenSiteHook} (`contribute`, at WIDEN sites). The host
 * calls the one its site needs; the other throws `INVALID_STATE`.
 */
export class SeedSlot implements SeedSiteHook, WidenSiteHook {
  readonly seedId: string;
  readonly siteId: string;
  readonly site: SeedSiteDescriptor;
  readonly #module: SeedModule;
  readonly #channels: number;
  #plan: BlendPlan;
  #phase: SeedSlotPhase;
  #alpha: number;
  readonly #life: ServiceState<'live' | 'disposed'>;

  /**
   * Probes the module with a zero batch `[1, ...site.shape]`. Throws
   * `KASMINA_GRAFT_SHAPE_MISMATCH` when it returns another shape (or fails to run), and
   * `KASMINA_BLEND_CONFIG_INVALID` when a CHANNEL plan does not fit the site. On a throw the
   * module is not disposed: the caller still owns it.
   */
  constructor(options: SeedSlotOptions) {
    this.seedId = options.seedId;
    this.siteId = options.siteId;
    this.#life = new ServiceState(`seed slot ${options.seedId}`, 'live');
    this.site = options.site;
    this.#module = options.module;
    const outputShape = siteOutputShape(options.site);
    this.#channels = outputShape[outputShape.length - 1] ?? 0;
    this.#plan = this.#checkPlan(options.plan);
    this.#phase = check.oneOf('phase', options.phase ?? 'isolated', PHASES);
    this.#alpha = check.number('alpha', options.alpha ?? 0, { min: 0, max: 1 });
    probeShape(options);
  }

  /** The grafted module. */
  get module(): SeedModule {
    return this.#module;
  }

  /** Trainable parameter count of the module. */
  get parameterCount(): number {
    return this.#module.variables.reduce((n, v) => n + v.size, 0);
  }

  get phase(): SeedSlotPhase {
    return this.#phase;
  }

  set phase(value: SeedSlotPhase) {
    this.#phase = check.oneOf('phase', value, PHASES);
  }

  /** The scheduled alpha in [0, 1]. */
  get alpha(): number {
    return this.#alpha;
  }

  set alpha(value: number) {
    this.#alpha = check.number('alpha', value, { min: 0, max: 1 });
  }

  get plan(): BlendPlan {
    return this.#plan;
  }

  /** Replaces the plan (a CHANNEL plan must fit the site's channel count). */
  set plan(value: BlendPlan) {
    this.#plan = this.#checkPlan(value);
  }

  get disposed(): boolean {
    return this.#life.is('disposed');
  }

  /**
   * The site hook. Paused: returns `activation` itself without evaluating the seed. Fused:
   * `activation + a·module(activation)`. Otherwise `s = module(stopGradient(activation))`
   * blended per phase and plan. Runs in its
   * own `tf.tidy`, so it is safe inside or outside the caller's.
   */
  apply(activation: tf.Tensor, _context: { readonly training: boolean }): tf.Tensor {
    this.#assertLive('apply');
    this.#assertSiteSort('apply', false);
    if (this.#phase === 'paused') return activation;
    const phase = this.#phase;
    const alpha = this.#alpha;
    return tf.tidy(() => {
      const seedOut = this.#module.apply(phase === 'fused' ? activation : this.moduleInput(activation));
      return blendActivation(activation, seedOut, alpha, this.#plan, phase);
    });
  }

  /**
   * The WIDEN site hook: the module reads `input` (the widened layer's input, behind a
   * stop-gradient except when fused) and its output is blended by {@link blendContribution}
   * — forward 0 while isolated, `a·s` after. Paused: zeros, without evaluating the seed.
   * Runs in its own `tf.tidy`.
   */
  contribute(input: tf.Tensor, _context: { readonly training: boolean }): tf.Tensor {
    this.#assertLive('contribute');
    this.#assertSiteSort('contribute', true);
    const phase = this.#phase;
    const batch = input.shape[0] ?? 0;
    if (phase === 'paused') return tf.zeros([batch, ...siteOutputShape(this.site)]);
    const alpha = this.#alpha;
    return tf.tidy(() => blendContribution(this.#module.apply(phase === 'fused' ? input : this.moduleInput(input)), alpha, phase));
  }

  /** The module's variables; none while paused or disposed (the optimizer leaves them alone). */
  trainableVariables(): readonly tf.Variable[] {
    if (this.disposed || this.#phase === 'paused') return [];
    return this.#module.variables;
  }

  /** Effective alpha(s) for the current state (a vector for CHANNEL), for telemetry. */
  effectiveAlphas(): Float32Array | number {
    return effectiveAlphas(this.#plan, this.#alpha, this.#channels);
  }

  /**
   * Runs the module alone on a batch `[batch, ...site.shape]` of standard normals drawn from
   * `rng` and reports the shape it returned and whether every value was finite (G2 and G3
   * read this). Leaves no tensors behind.
   */
  probe(rng: Rng, batch = PROBE_BATCH): ModuleProbe {
    this.#assertLive('probe');
    const inputShape = [batch, ...this.site.shape];
    const expectedShape = [batch, ...siteOutputShape(this.site)];
    const input = normalSamples(
      rng,
      inputShape.reduce((a, b) => a * b, 1),
    );
    try {
      return tf.tidy(() => {
        const out = this.#module.apply(tf.tensor(input, inputShape));
        let maxAbs = 0;
        for (const v of out.dataSync() as Float32Array) maxAbs = Math.max(maxAbs, Math.abs(v));
        const finite = Number.isFinite(maxAbs);
        if (!finite) maxAbs = Number.NaN;
        return { inputShape, expectedShape, outputShape: [...out.shape], finite, maxAbs };
      });
    } catch (error) {
      if (isEsperError(error)) throw error;
      return { inputShape, expectedShape, outputShape: [], finite: false, maxAbs: Number.NaN };
    }
  }

  /** Disposes the module. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.#life.set('disposed');
    this.#module.dispose();
  }

  /**
   * What the module sees: the activation behind a stop-gradient, so no seed gradient reaches
   * the host through the module's input. A seam for tests that need a leaking slot.
   */
  protected moduleInput(activation: tf.Tensor): tf.Tensor {
    return stopGradient(activation);
  }

  #checkPlan(plan: BlendPlan): BlendPlan {
    if (plan.mode === BlendMode.UNSPECIFIED) {
      throw new EsperError(ErrorCode.KASMINA_BLEND_CONFIG_INVALID, 'a blend plan needs a mode', {
        details: { reason: 'unknown_mode', seedId: this.seedId },
      });
    }
    if (isWidenSite(this.site) && plan.mode !== BlendMode.RESIDUAL) {
      throw new EsperError(ErrorCode.KASMINA_BLEND_CONFIG_INVALID, 'a WIDEN site blends RESIDUAL only', {
        details: { reason: 'widen_requires_residual', seedId: this.seedId },
      });
    }
    // Validates CHANNEL plans against this site (throws KASMINA_BLEND_CONFIG_INVALID).
    effectiveAlphas(plan, 0, this.#channels);
    return plan;
  }

  /** `apply` serves DENSE and CONV sites, `contribute` WIDEN sites. */
  #assertSiteSort(operation: string, widen: boolean): void {
    if (isWidenSite(this.site) === widen) return;
    throw new EsperError(
      ErrorCode.INVALID_STATE,
      `seed ${this.seedId}: ${operation}() does not serve site ${this.siteId} (use ${widen ? 'apply' : 'contribute'}())`,
      { details: { seedId: this.seedId, siteId: this.siteId, operation } },
    );
  }

  #assertLive(operation: string): void {
    this.#life.require('live', operation, { details: { seedId: this.seedId, siteId: this.siteId } });
  }
}

/** `size` standard normal samples from `rng`. */
export function normalSamples(rng: Rng, size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i += 1) out[i] = rng.nextNormal();
  return out;
}

function probeShape(options: SeedSlotOptions): void {
  const probe = [1, ...options.site.shape];
  const expected = [1, ...siteOutputShape(options.site)];
  let actual: number[];
  try {
    actual = tf.tidy(() => options.module.apply(tf.zeros(probe)).shape);
  } catch (error) {
    if (isEsperError(error)) throw error;
    throw mismatch(options, expected, undefined, error);
  }
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) throw mismatch(options, expected, actual);
}

function mismatch(
  options: SeedSlotOptions,
  expected: readonly number[],
  actual: readonly number[] | undefined,
  cause?: unknown,
): EsperError {
  const got = actual === undefined ? 'an error' : `[${actual.join(', ')}]`;
  return new EsperError(
    ErrorCode.KASMINA_GRAFT_SHAPE_MISMATCH,
    `seed ${options.seedId}: module ${options.module.blueprintId} returned ${got} where site ${options.siteId} needs [${expected.join(', ')}]`,
    {
      cause,
      details: {
        seedId: options.seedId,
        siteId: options.siteId,
        blueprintId: options.module.blueprintId,
        expected: `[${expected.join(', ')}]`,
        actual: got,
      },
    },
  );
}
