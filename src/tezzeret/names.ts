/**
 * Tezzeret metric names, spelled as reference prototype-blueprint-pipeline §2.4 gives them
 * (the subset the compiler core maintains; job, retry and strategy metrics belong to the forge).
 */
export const TezzeretMetric = {
  COMPILATION_TOTAL: 'tezzeret.compilation.total',
  COMPILATION_FAILED: 'tezzeret.compilation.failed',
  LAST_COMPILE_MS: 'tezzeret.compilation.last_compile_ms',
  LAST_PREWARM_MS: 'tezzeret.compilation.last_prewarm_ms',
} as const;

/** Union of {@link TezzeretMetric} values. */
export type TezzeretMetric = (typeof TezzeretMetric)[keyof typeof TezzeretMetric];
