/**
 * Widening: k new units in the hidden dense layer a WIDEN site belongs to (Net2Net-style
 * growth, entering function-preserving). The module maps the layer's input `u`
 * `[batch, in]` to its contribution to the next layer's pre-activation `[batch, out]`:
 * `f(u·U + c)·V`, `U: [in, k]`, `c: [k]` (absent with knob `bias` 0), `V: [k, out]`, `f` a
 * ReLU. The `init` knob picks how the new units start ({@link WidenInit}):
 *
 * - **zero-out** (BP051): `U` He-normal (the layer's own initialiser), `c` zeros, `V`
 *   zeros — the contribution is exactly 0 at graft, and the first gradient step moves `V`
 *   (∂L/∂V = h_newᵀ·G with h_new ≠ 0) and so brings the new units in.
 * - **GradMax** (BP052, BP053; Evci et al., ICLR 2022): `U` and `c` zeros, so
 *   `h_new = f(0) = 0` and the contribution is 0 whatever `V` is; `V` is set from the
 *   host's gradient once Kasmina has it (the module's {@link GradientInit}): the rows of `V`
 *   are the top-k right singular vectors of `M = uᵀ·G` (`u` the layer's input batch, `G` =
 *   ∂L/∂z of the next layer's pre-activation), which maximises the norm of the new units'
 *   first gradient `∂L/∂U = M·Vᵀ` among `V` of the same Frobenius norm. Norm: each row a
 *   unit vector, `‖V‖_F = √k` (our choice, not the paper's: the eigenvectors come
 *   orthonormal, and a unit outgoing vector per new unit keeps the step on `U` proportional
 *   to the singular values of `M` without a scale knob to tune). When `k` exceeds `out`
 *   only `out` directions exist: rows past `out` are random unit vectors drawn at build
 *   time. Until `V` is set the module is inert (U and V both 0: every gradient is 0).
 * - **random** (BP054, BP055; GradMax's `AddRandom` baseline): `U` and `c` zeros, `V`'s rows
 *   drawn when the seed is grafted (the module's {@link GraftInit}, from the run's stream:
 *   stored weights are the same for every seed of an artifact) as the baseline draws them —
 *   uniform [0, 1) entries, each row scaled to a unit vector, the norm GradMax's rows have,
 *   so the two differ only in direction. Function-preserving (U = 0) like GradMax.
 *
 *   The gradient at `U` reaches the new units only if `f'(0) = 1`: TF.js's `tf.relu` has
 *   gradient 0 at 0 (its `step(x)` is `x > 0`), `tf.maximum(x, 0)` has gradient 1 at 0 (its
 *   gradient masks by `x >= 0`) — so this family uses `tf.maximum(x, 0)` for every init
 *   (the same function as `tf.relu`; only the derivative at exactly 0 differs).
 *
 * Fits WIDEN sites only.
 */
import { ErrorCode, EsperError } from '../../core/index.js';
import { SeedSiteKind, type SeedSiteDescriptor } from '../../leyline/index.js';
import { Initializer, tf, topRightSingularVectors, type Rng } from '../../tensor/index.js';
import { assembleModule, dense, FamilyId, knob, type FamilyConfig, type GradientInit, type GraftInit, type SeedModule } from '../family.js';

/** Values of the widen family's `init` knob. */
export const WidenInit = {
  /** Incoming He-normal, outgoing zeros (BP051). */
  ZERO_OUT: 0,
  /** Incoming zeros, outgoing from the gradient's top singular vectors (BP052, BP053). */
  GRADMAX: 1,
  /** Incoming zeros, outgoing random unit rows drawn at graft (BP054, BP055). */
  RANDOM: 2,
} as const;

/** True for a WIDEN site `[in]` → `[out]` with both sizes ≥ 1. */
export function isWidenableSite(site: SeedSiteDescriptor): boolean {
  return (
    site.kind === SeedSiteKind.WIDEN &&
    site.shape.length === 1 &&
    (site.shape[0] ?? 0) >= 1 &&
    site.outputShape.length === 1 &&
    (site.outputShape[0] ?? 0) >= 1
  );
}

/** ReLU with derivative 1 at 0 (see the file comment). */
const relu0 = (x: tf.Tensor): tf.Tensor => tf.maximum(x, tf.scalar(0));

/** Widening family: `units` new ReLU units, zero-out, GradMax or random initialisation. */
export const widenFamily: FamilyConfig = {
  id: FamilyId.WIDEN,
  summary:
    'new ReLU units in the hidden layer of a WIDEN site (init 0 zero-out: outgoing 0; init 1 GradMax and 2 random: incoming 0; bias 0: no unit biases)',
  knobs: [
    { name: 'units', min: 1, max: 4096, defaultValue: 24, integer: true },
    { name: 'init', min: WidenInit.ZERO_OUT, max: WidenInit.RANDOM, defaultValue: WidenInit.ZERO_OUT, integer: true },
    { name: 'bias', min: 0, max: 1, defaultValue: 1, integer: true },
  ],
  fits: isWidenableSite,
  build(knobs, site, context) {
    const [inputs, outputs] = [site.shape[0] as number, site.outputShape[0] as number];
    const units = knob(knobs, 'units');
    const init = knob(knobs, 'init');
    const withBias = knob(knobs, 'bias') === 1;
    let outgoing: tf.Variable | undefined;
    const module = assembleModule(FamilyId.WIDEN, context, (bag) => {
      const u = bag.add('U', init === WidenInit.ZERO_OUT ? Initializer.HE_NORMAL : Initializer.ZEROS, [inputs, units]);
      const c = withBias ? bag.add('c', Initializer.ZEROS, [units]) : undefined;
      const v = bag.add('V', Initializer.ZEROS, [units, outputs]);
      outgoing = v;
      return (x) => dense(relu0(dense(x as tf.Tensor2D, u, c)) as tf.Tensor2D, v);
    });
    const v = outgoing as tf.Variable;
    if (init === WidenInit.RANDOM) return { ...module, functionPreserving: true, graftInit: randomInit(v) } satisfies SeedModule;
    if (init !== WidenInit.GRADMAX) return { ...module, functionPreserving: true } satisfies SeedModule;
    const spare = spareRows(context.rng, Math.max(0, units - outputs), outputs);
    return { ...module, functionPreserving: true, gradientInit: gradMaxInit(v, module, spare) } satisfies SeedModule;
  },
};

/** Draws `V`'s rows as GradMax's random baseline does: uniform [0, 1) entries, each row scaled to unit length. */
function randomInit(v: tf.Variable): GraftInit {
  const [units, outputs] = v.shape as [number, number];
  return {
    apply(rng: Rng): void {
      const values = new Float32Array(units * outputs);
      for (let row = 0; row < units; row += 1) {
        const entries = Array.from({ length: outputs }, () => rng.nextFloat());
        const norm = Math.hypot(...entries) || 1;
        entries.forEach((x, col) => (values[row * outputs + col] = x / norm));
      }
      tf.tidy(() => v.assign(tf.tensor2d(values, [units, outputs])));
    },
  };
}

/** `count` random unit vectors of length `size` (GradMax's rows past the `out` singular directions). */
function spareRows(rng: Rng, count: number, size: number): Float64Array[] {
  return Array.from({ length: count }, () => {
    const row = Float64Array.from({ length: size }, () => rng.nextNormal());
    const norm = Math.hypot(...row) || 1;
    return row.map((x) => x / norm);
  });
}

/** Sets `V` (`[k, out]`) to the top-k right singular vectors of `M` (unit rows). */
function gradMaxInit(v: tf.Variable, module: SeedModule, spare: readonly Float64Array[]): GradientInit {
  const [units, outputs] = v.shape as [number, number];
  // Pending until V is non-zero: true after the build, false once set — and false for a
  // module whose V a checkpoint restored after the initialisation ran.
  let done = false;
  return {
    pending(): boolean {
      if (!done) done = tf.tidy(() => tf.any(tf.notEqual(v, 0)).dataSync()[0] === 1);
      return !done;
    },
    apply(matrix: Float32Array, rows: number, cols: number): void {
      if (cols !== outputs) {
        throw new EsperError(
          ErrorCode.INVALID_ARGUMENT,
          `GradMax init of ${module.blueprintId}: gradient has ${cols} columns, V has ${outputs}`,
          {
            details: { field: 'matrix', blueprintId: module.blueprintId, cols, outputs },
          },
        );
      }
      const top = topRightSingularVectors(matrix, rows, cols, Math.min(units, outputs));
      const values = new Float32Array(units * outputs);
      [...top.vectors, ...spare].forEach((row, i) => values.set(row, i * outputs));
      tf.tidy(() => v.assign(tf.tensor2d(values, [units, outputs])));
      done = true;
    },
  };
}
