/**
 * Symmetric eigen-decomposition on the CPU (TensorFlow.js has no SVD or eigen solver):
 * the cyclic Jacobi method in float64. Used for GradMax's outgoing weights, the top right
 * singular vectors of `M`, which are the top eigenvectors of the symmetric `MᵀM`. Sizes
 * here are a layer's width (tens to a few hundred), where Jacobi's O(n³) per sweep is
 * cheap and its accuracy (orthonormal vectors to rounding) is what the caller needs.
 */
import { ErrorCode, EsperError } from '../core/index.js';

/** Eigenvalues (descending) and unit eigenvectors of a symmetric matrix. */
export interface SymmetricEigen {
  /** `n` eigenvalues, largest first. */
  readonly values: Float64Array;
  /** `n` unit eigenvectors, `vectors[i]` belonging to `values[i]`; mutually orthogonal. */
  readonly vectors: readonly Float64Array[];
}

/** Sweeps before giving up; Jacobi converges quadratically, a few sweeps suffice in practice. */
const MAX_SWEEPS = 100;

/**
 * Eigen-decomposition of the symmetric `n×n` matrix `matrix` (row-major; only symmetric
 * input is meaningful: the upper and lower triangles must agree).
 * @throws EsperError INVALID_ARGUMENT when `matrix` is not `n·n` finite values or not symmetric
 */
export function symmetricEigen(matrix: ArrayLike<number>, n: number): SymmetricEigen {
  if (!Number.isInteger(n) || n < 1 || matrix.length !== n * n) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `symmetricEigen needs an n×n matrix, got ${matrix.length} values for n = ${n}`, {
      details: { field: 'matrix', n, length: matrix.length },
    });
  }
  const a = Float64Array.from(matrix);
  let scale = 0;
  for (let i = 0; i < n * n; i += 1) {
    const v = a[i] as number;
    if (!Number.isFinite(v)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'symmetricEigen needs finite values', { details: { field: 'matrix', index: i } });
    }
    scale = Math.max(scale, Math.abs(v));
  }
  for (let i = 0; i < n; i += 1) {
    for (let j = i + 1; j < n; j += 1) {
      if (Math.abs((a[i * n + j] as number) - (a[j * n + i] as number)) > 1e-6 * Math.max(1, scale)) {
        throw new EsperError(ErrorCode.INVALID_ARGUMENT, `symmetricEigen needs a symmetric matrix (entry ${i},${j} differs)`, {
          details: { field: 'matrix', row: i, column: j },
        });
      }
    }
  }
  // v: accumulated rotations, columns are the eigenvectors.
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i += 1) v[i * n + i] = 1;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep += 1) {
    let off = 0;
    for (let i = 0; i < n; i += 1) for (let j = i + 1; j < n; j += 1) off += (a[i * n + j] as number) ** 2;
    if (off <= (Number.EPSILON * scale) ** 2 * n * n) break;
    for (let p = 0; p < n; p += 1) {
      for (let q = p + 1; q < n; q += 1) rotate(a, v, n, p, q);
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => (a[y * n + y] as number) - (a[x * n + x] as number));
  const values = Float64Array.from(order, (i) => a[i * n + i] as number);
  const vectors = order.map((col) => Float64Array.from({ length: n }, (_, row) => v[row * n + col] as number));
  return { values, vectors };
}

/** One Jacobi rotation zeroing `a[p][q]` (and `a[q][p]`), accumulated into `v`. */
function rotate(a: Float64Array, v: Float64Array, n: number, p: number, q: number): void {
  const apq = a[p * n + q] as number;
  if (apq === 0) return;
  const app = a[p * n + p] as number;
  const aqq = a[q * n + q] as number;
  const theta = (aqq - app) / (2 * apq);
  const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
  const c = 1 / Math.sqrt(t * t + 1);
  const s = t * c;
  for (let k = 0; k < n; k += 1) {
    const akp = a[k * n + p] as number;
    const akq = a[k * n + q] as number;
    a[k * n + p] = c * akp - s * akq;
    a[k * n + q] = s * akp + c * akq;
  }
  for (let k = 0; k < n; k += 1) {
    const apk = a[p * n + k] as number;
    const aqk = a[q * n + k] as number;
    a[p * n + k] = c * apk - s * aqk;
    a[q * n + k] = s * apk + c * aqk;
  }
  for (let k = 0; k < n; k += 1) {
    const vkp = v[k * n + p] as number;
    const vkq = v[k * n + q] as number;
    v[k * n + p] = c * vkp - s * vkq;
    v[k * n + q] = s * vkp + c * vkq;
  }
}

/**
 * The top `k` right singular vectors of `m` (`rows×cols`, row-major): the eigenvectors of
 * `mᵀm` for its `k` largest eigenvalues, each a unit vector of length `cols`, with the
 * singular values `√λ`. `k` may not exceed `cols`.
 * @throws EsperError INVALID_ARGUMENT for a bad shape or `k`
 */
export function topRightSingularVectors(
  m: ArrayLike<number>,
  rows: number,
  cols: number,
  k: number,
): { readonly singularValues: Float64Array; readonly vectors: readonly Float64Array[] } {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1 || m.length !== rows * cols) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `topRightSingularVectors needs a ${rows}×${cols} matrix, got ${m.length} values`, {
      details: { field: 'm', rows, cols, length: m.length },
    });
  }
  if (!Number.isInteger(k) || k < 1 || k > cols) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `topRightSingularVectors: k must be an integer in [1, ${cols}], got ${k}`, {
      details: { field: 'k', k, cols },
    });
  }
  const gram = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r += 1) {
    for (let i = 0; i < cols; i += 1) {
      const mi = m[r * cols + i] as number;
      if (mi === 0) continue;
      for (let j = i; j < cols; j += 1) gram[i * cols + j] = (gram[i * cols + j] as number) + mi * (m[r * cols + j] as number);
    }
  }
  for (let i = 0; i < cols; i += 1) for (let j = 0; j < i; j += 1) gram[i * cols + j] = gram[j * cols + i] as number;
  const { values, vectors } = symmetricEigen(gram, cols);
  return {
    singularValues: Float64Array.from(values.subarray(0, k), (l) => Math.sqrt(Math.max(0, l))),
    vectors: vectors.slice(0, k),
  };
}
