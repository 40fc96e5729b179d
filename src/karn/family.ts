/**
 * The seed-module family contract: a family is one network design (residual MLP, 3×3 conv
 * block, ...) with a few numeric knobs; blueprints are parametrised instances of a family
 * (see `catalog-data.ts`). Families replace the prototype's single generic MLP (reference
 * prototype-blueprint-pipeline §1.1 "[quirk] every default compiles to the same MLP").
 */
import { ErrorCode, EsperError, optionChecks } from '../core/index.js';
import { SeedSiteKind, type SeedSiteDescriptor } from '../leyline/index.js';
import { Initializer, initVariable, tf, type Rng } from '../tensor/index.js';

/** Stable family identifiers (the value stored in `BlueprintDescriptor.family`). */
export const FamilyId = {
  RESIDUAL_MLP: 'residual_mlp',
  BOTTLENECK_MLP: 'bottleneck_mlp',
  LOW_RANK_ADAPTER: 'low_rank_adapter',
  CONV3X3_BLOCK: 'conv3x3_block',
  DEPTHWISE_SEPARABLE: 'depthwise_separable',
  SQUEEZE_EXCITE: 'squeeze_excite',
  GATED_LINEAR_UNIT: 'gated_linear_unit',
  SELF_ATTENTION: 'self_attention',
  NORM_AFFINE: 'norm_affine',
  MIXTURE_OF_EXPERTS: 'mixture_of_experts',
  HIGHWAY_GATE: 'highway_gate',
  UNSTABLE_FEEDBACK: 'unstable_feedback',
  ZERO_CONTROL: 'zero_control',
  WIDEN: 'widen',
  WIDEN_CONV: 'widen_conv',
} as const;

/** Union of {@link FamilyId} values. */
export type FamilyId = (typeof FamilyId)[keyof typeof FamilyId];

/** Knob values handed to a family builder, by knob name. */
export type Knobs = Readonly<Record<string, number>>;

/**
 * A grown module. `apply` maps a batch `[batch, ...site.shape]` to
 * `[batch, ...siteOutputShape(site)]` — the same shape at DENSE and CONV sites, the next
 * layer's pre-activation shape at WIDEN sites; it allocates intermediates, so call it
 * inside `tf.tidy` (or dispose the result). The host adds the output to its activation
 * (`x + α·seed(x)`) or, at a WIDEN site, to the next layer's pre-activation, so a module
 * whose output is 0 leaves the host unchanged.
 */
export interface SeedModule {
  /** The blueprint this module was built from. */
  readonly blueprintId: string;
  /** The family that built it. */
  readonly family: FamilyId;
  /** `[batch, ...site.shape]` → `[batch, ...siteOutputShape(site)]`. */
  apply(x: tf.Tensor): tf.Tensor;
  /** Trainable variables, named `<scope>/<param>` (scope defaults to the blueprint id). */
  readonly variables: readonly tf.Variable[];
  /** Frees every variable and constant the module holds. Idempotent. */
  dispose(): void;
  /**
   * Present on modules whose initialisation needs the host's gradient (GradMax widening):
   * Kasmina asks the trainer for the gradient matrix at the module's site while
   * {@link GradientInit.pending} holds and hands it to {@link GradientInit.apply}.
   */
  readonly gradientInit?: GradientInit;
  /**
   * Present on modules that draw part of their weights when grafted (random widening):
   * Kasmina calls {@link GraftInit.apply} with the run's executor stream before G1 probes
   * the module. A module is rebuilt from an artifact whose stored weights are the same for
   * every seed grown from it (one artifact per blueprint and site shape, seeded by that
   * key), so whatever must differ between seeds and runs is drawn here, not at build.
   */
  readonly graftInit?: GraftInit;
  /**
   * True when the module, as built, outputs exactly 0 for every input, so grafting it leaves
   * the host's function unchanged (widening: new units whose outgoing or incoming weights
   * are 0). Such a seed needs no isolated training and no alpha ramp: Kasmina checks the
   * claim on a probe at graft (G1) and walks it through the same stages and gates with one
   * TRAINING step (after its gradient initialisation, if any) and alpha 1 from BLENDING on.
   */
  readonly functionPreserving?: boolean;
}

/**
 * A module's gradient-based initialisation. At a WIDEN site the matrix is
 * `M = uᵀ·G` `[inputs, outputs]` (row-major): `u` the site's input batch, `G` the loss
 * gradient with respect to the next layer's pre-activation on the same batch.
 */
export interface GradientInit {
  /** True until the initialisation ran (also false for weights restored after it ran). */
  pending(): boolean;
  /** Sets the weights from `matrix` (`rows×cols`, row-major); afterwards {@link pending} is false. */
  apply(matrix: Float32Array, rows: number, cols: number): void;
}

/** A module's random initialisation at graft, drawn from the run's stream (see {@link SeedModule.graftInit}). */
export interface GraftInit {
  /** Sets the weights it owns from `rng`. Called once, when the seed is grafted (not when a checkpoint restores it). */
  apply(rng: Rng): void;
}

/** Declaration of one family knob. */
export interface KnobSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Value used when a blueprint's mapping leaves the knob out. */
  readonly defaultValue: number;
  /** Rounded to the nearest integer before use. @default false */
  readonly integer?: boolean;
}

/** What a family builder receives besides knobs and site. */
export interface BuildContext {
  readonly blueprintId: string;
  /** Variable name prefix; distinct live modules of one blueprint need distinct scopes. */
  readonly scope: string;
  /** Seeded stream for weight initialisation. */
  readonly rng: Rng;
}

/** A registered family: its knobs, the sites it fits, and its builder. */
export interface FamilyConfig {
  readonly id: FamilyId;
  /** One-line description of the design. */
  readonly summary: string;
  readonly knobs: readonly KnobSpec[];
  /** Whether the design can be grown at `site`. */
  fits(site: SeedSiteDescriptor): boolean;
  /** Builds the module; `knobs` are complete, in range and rounded where integer. */
  build(knobs: Knobs, site: SeedSiteDescriptor, context: BuildContext): SeedModule;
}

/** Largest token count the attention family accepts (its score matrix is tokens²). */
export const MAX_ATTENTION_TOKENS = 1024;

/** True for a DENSE site `[features]` with features ≥ 1. */
export function isDenseSite(site: SeedSiteDescriptor): boolean {
  return site.kind === SeedSiteKind.DENSE && site.shape.length === 1 && (site.shape[0] ?? 0) >= 1;
}

/** True for a CONV site `[h, w, c]` with every dimension ≥ 1. */
export function isConvSite(site: SeedSiteDescriptor): boolean {
  return site.kind === SeedSiteKind.CONV && site.shape.length === 3 && site.shape.every((d) => d >= 1);
}

/** DENSE or CONV: designs that act on the last axis (features or channels) position-wise. */
export function isPointwiseSite(site: SeedSiteDescriptor): boolean {
  return isDenseSite(site) || isConvSite(site);
}

/** Size of the last axis of a site (features for DENSE, channels for CONV). */
export function channelsOf(site: SeedSiteDescriptor): number {
  return site.shape[site.shape.length - 1] ?? 0;
}

/**
 * Completes, range-checks and rounds `knobs` against `specs`; unknown knobs are rejected.
 * Throws `INVALID_ARGUMENT` naming the knob.
 */
export function resolveKnobs(family: FamilyId, specs: readonly KnobSpec[], knobs: Knobs): Knobs {
  const check = optionChecks(`family ${family}`);
  const known = new Set(specs.map((s) => s.name));
  for (const name of Object.keys(knobs)) {
    if (!known.has(name)) check.fail(name, `one of its knobs (${[...known].join(', ')})`, knobs[name]);
  }
  const out: Record<string, number> = {};
  for (const spec of specs) {
    const raw = knobs[spec.name] ?? spec.defaultValue;
    out[spec.name] = check.number(spec.name, spec.integer === true ? Math.round(raw) : raw, { min: spec.min, max: spec.max });
  }
  return out;
}

/** Reads a resolved knob (resolveKnobs guarantees presence). */
export function knob(knobs: Knobs, name: string): number {
  const value = knobs[name];
  if (value === undefined) throw new EsperError(ErrorCode.INVALID_ARGUMENT, `knob '${name}' missing`, { details: { knob: name } });
  return value;
}

/**
 * Collects a module's variables as it is built and frees them all if the build fails, so a
 * half-built module never leaks or squats a variable name.
 */
export class VariableBag {
  readonly #context: BuildContext;
  readonly #variables: tf.Variable[] = [];

  constructor(context: BuildContext) {
    this.#context = context;
  }

  /** A new variable `<scope>/<param>` initialised with `kind`, optionally scaled. */
  add(param: string, kind: Initializer, shape: readonly number[], scale = 1): tf.Variable {
    const name = `${this.#context.scope}/${param}`;
    if (scale === 1) {
      const v = initVariable(name, kind, shape, this.#context.rng);
      this.#variables.push(v);
      return v;
    }
    const base = initVariable(`${name}#init`, kind, shape, this.#context.rng, false);
    try {
      const scaled = tf.tidy(() => tf.mul(base, tf.scalar(scale)));
      try {
        const v = tf.variable(scaled, true, name);
        this.#variables.push(v);
        return v;
      } finally {
        scaled.dispose();
      }
    } finally {
      base.dispose();
    }
  }

  /** A new variable filled with `value`. */
  constant(param: string, shape: readonly number[], value: number): tf.Variable {
    const kind = value === 0 ? Initializer.ZEROS : Initializer.ONES;
    return this.add(param, kind, shape, value === 0 ? 1 : value);
  }

  /** Every variable added so far, in order. */
  get variables(): readonly tf.Variable[] {
    return this.#variables;
  }

  /** Disposes every variable added so far. */
  disposeAll(): void {
    for (const v of this.#variables) v.dispose();
    this.#variables.length = 0;
  }
}

/**
 * Runs `body` to lay out a module's variables and returns a {@link SeedModule}; disposes
 * the variables if `body` throws.
 */
export function assembleModule(
  family: FamilyId,
  context: BuildContext,
  body: (bag: VariableBag) => (x: tf.Tensor) => tf.Tensor,
): SeedModule {
  const bag = new VariableBag(context);
  let forward: (x: tf.Tensor) => tf.Tensor;
  try {
    forward = body(bag);
  } catch (error) {
    bag.disposeAll();
    throw error;
  }
  const variables = [...bag.variables];
  let disposed = false;
  return {
    blueprintId: context.blueprintId,
    family,
    variables,
    apply(x: tf.Tensor): tf.Tensor {
      if (disposed) {
        throw new EsperError(ErrorCode.INVALID_STATE, `seed module ${context.scope} is disposed`, {
          details: { blueprintId: context.blueprintId },
        });
      }
      return tf.tidy(() => forward(x));
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      bag.disposeAll();
    },
  };
}

/** Applies `fn` to the last axis: reshapes `[..., c]` to `[n, c]`, runs `fn`, restores the shape. */
export function pointwise(x: tf.Tensor, fn: (rows: tf.Tensor2D) => tf.Tensor2D): tf.Tensor {
  const c = x.shape[x.shape.length - 1] as number;
  const rows = tf.reshape(x, [-1, c]) as tf.Tensor2D;
  const out = fn(rows);
  return tf.reshape(out, [...x.shape.slice(0, -1), out.shape[1] as number]);
}

/** `x·w + b` on rows. */
export function dense(x: tf.Tensor2D, w: tf.Tensor, b?: tf.Tensor): tf.Tensor2D {
  const y = tf.matMul(x, w as tf.Tensor2D) as tf.Tensor2D;
  return b === undefined ? y : (tf.add(y, b) as tf.Tensor2D);
}

/** GELU, sigmoid approximation `x·σ(1.702x)` (tfjs-core has no gelu op). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(tf.mul(x, tf.scalar(1.702))));
}

/** Normalises over the last axis to zero mean and unit variance (no affine). */
export function normaliseLastAxis(x: tf.Tensor, epsilon: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, tf.scalar(epsilon))));
}
