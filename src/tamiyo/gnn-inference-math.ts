/**
 * The scalar arithmetic of the GNN's inference pass (`gnn-inference.ts`): the edge loops'
 * inner products, and GELU to float32 precision without an `exp` per call.
 */

/** `y[at…at+n] += a·x[from…from+n]`, unrolled by four (the edge loops' inner loop). */
export function axpy(y: Float64Array, at: number, x: Float32Array, from: number, a: number, n: number): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    y[at + j] = (y[at + j] as number) + (x[from + j] as number) * a;
    y[at + j + 1] = (y[at + j + 1] as number) + (x[from + j + 1] as number) * a;
    y[at + j + 2] = (y[at + j + 2] as number) + (x[from + j + 2] as number) * a;
    y[at + j + 3] = (y[at + j + 3] as number) + (x[from + j + 3] as number) * a;
  }
  for (; j < n; j += 1) y[at + j] = (y[at + j] as number) + (x[from + j] as number) * a;
}

/** `Σ x[from + j]·w[at + j]` over `j < n`, unrolled by four. */
export function dot(x: Float32Array, from: number, w: Float32Array, at: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    s0 += (x[from + j] as number) * (w[at + j] as number);
    s1 += (x[from + j + 1] as number) * (w[at + j + 1] as number);
    s2 += (x[from + j + 2] as number) * (w[at + j + 2] as number);
    s3 += (x[from + j + 3] as number) * (w[at + j + 3] as number);
  }
  for (; j < n; j += 1) s0 += (x[from + j] as number) * (w[at + j] as number);
  return s0 + s1 + (s2 + s3);
}

/** GELU's table: Φ and h·φ at `−GELU_LIMIT + i·h`, h = 1/GELU_STEPS_PER_UNIT. */
const GELU_LIMIT = 6;
const GELU_STEPS_PER_UNIT = 32;
const GELU_CDF = new Float64Array(2 * GELU_LIMIT * GELU_STEPS_PER_UNIT + 1);
const GELU_PDF_STEP = new Float64Array(GELU_CDF.length);
for (let i = 0; i < GELU_CDF.length; i += 1) {
  const x = -GELU_LIMIT + i / GELU_STEPS_PER_UNIT;
  GELU_CDF[i] = 0.5 * erfc(-x * Math.SQRT1_2);
  GELU_PDF_STEP[i] = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI) / GELU_STEPS_PER_UNIT;
}

/**
 * Exact GELU `x·Φ(x)` (`0.5·x·(1 + erf(x/√2))`, reference §7.2 item 1) to float32
 * precision: Φ by cubic Hermite interpolation of a table on a 1/32 grid over [−6, 6]
 * (interpolation error below 1e-9; outside, Φ is 0 or 1 in float32, as the tensor pass's
 * erf makes it). A call costs a few ns against ~40 for an `exp`-based erfc, and a forward
 * makes `nodes × 256` of them.
 */
export function gelu(x: number): number {
  if (x > -GELU_LIMIT && x < GELU_LIMIT) {
    const u = (x + GELU_LIMIT) * GELU_STEPS_PER_UNIT;
    const i = Math.floor(u);
    const f = u - i;
    const f2 = f * f;
    const f3 = f2 * f;
    const cdf =
      (2 * f3 - 3 * f2 + 1) * (GELU_CDF[i] as number) +
      (f3 - 2 * f2 + f) * (GELU_PDF_STEP[i] as number) +
      (3 * f2 - 2 * f3) * (GELU_CDF[i + 1] as number) +
      (f3 - f2) * (GELU_PDF_STEP[i + 1] as number);
    return x * cdf;
  }
  // x when x ≥ 6; ±0 below −6 (NaN stays NaN).
  return x >= GELU_LIMIT ? x : x * 0;
}

/** erfc by the Chebyshev fit of Numerical Recipes §6.2 (fractional error below 1.2e-7 everywhere). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const tail = t * Math.exp(-z * z + poly);
  return x >= 0 ? tail : 2 - tail;
}
